// Package plist reads and writes the XML property lists that macOS
// command-line tools print and accept: `dscl -plist . -read`, `security
// authorizationdb read` and `write`. It keeps a document as an ordered tree
// of Values, so that a property list read, changed in one place and
// written back keeps every other key, in order, with its type.
//
// Only the XML format is handled (the tools above print XML; binary
// property lists are not). Decode is strict: one root value inside
// <plist>, the element names of Apple's DTD (dict, array, key, string,
// integer, real, true, false, data, date), a dict that alternates key and
// value, bounded depth and size.
package plist

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind is the type of a Value.
type Kind uint8

// The property list types.
const (
	String Kind = iota + 1
	Integer
	Real
	Bool
	Data
	Date
	Array
	Dict
)

// Value is one property list value. Exactly the field of its Kind is
// meaningful.
type Value struct {
	Kind  Kind
	Str   string    // String
	Int   int64     // Integer
	Float float64   // Real
	Bool  bool      // Bool
	Bytes []byte    // Data
	Time  time.Time // Date (UTC, whole seconds)
	Items []Value   // Array
	Dict  []Entry   // Dict, in document order
}

// Entry is one key of a dict and its value.
type Entry struct {
	Key   string
	Value Value
}

// Limits of Decode.
const (
	// MaxSize bounds the document Decode accepts (1 MiB: a user record or
	// a right is a few kilobytes).
	MaxSize = 1 << 20
	// MaxDepth bounds the nesting of arrays and dicts.
	MaxDepth = 32
)

// ErrSyntax is returned (wrapped) for a document Decode does not accept.
var ErrSyntax = errors.New("plist: malformed property list")

// StringValue returns a String Value.
func StringValue(s string) Value { return Value{Kind: String, Str: s} }

// ArrayValue returns an Array Value of the given items.
func ArrayValue(items ...Value) Value { return Value{Kind: Array, Items: items} }

// Get returns the value of key in a Dict, and whether it is there.
func (v Value) Get(key string) (Value, bool) {
	for _, e := range v.Dict {
		if e.Key == key {
			return e.Value, true
		}
	}
	return Value{}, false
}

// Set replaces the value of key in a Dict, or appends the key.
func (v *Value) Set(key string, val Value) {
	for i := range v.Dict {
		if v.Dict[i].Key == key {
			v.Dict[i].Value = val
			return
		}
	}
	v.Dict = append(v.Dict, Entry{Key: key, Value: val})
}

// Strings returns the items of an Array of Strings; ok is false if v is
// not an Array or holds anything but strings.
func (v Value) Strings() (out []string, ok bool) {
	if v.Kind != Array {
		return nil, false
	}
	for _, it := range v.Items {
		if it.Kind != String {
			return nil, false
		}
		out = append(out, it.Str)
	}
	return out, true
}

// Decode parses one XML property list document.
func Decode(doc []byte) (Value, error) {
	if len(doc) > MaxSize {
		return Value{}, fmt.Errorf("%w: %d bytes > %d", ErrSyntax, len(doc), MaxSize)
	}
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	// Only the XML entities; the DTD is never fetched or expanded.
	d.Entity = nil
	p := parser{d: d}
	start, err := p.nextStart()
	if err != nil {
		return Value{}, err
	}
	if start.Name.Local != "plist" || start.Name.Space != "" {
		return Value{}, fmt.Errorf("%w: root element <%s>", ErrSyntax, start.Name.Local)
	}
	inner, err := p.nextStart()
	if err != nil {
		return Value{}, err
	}
	v, err := p.value(inner, 1)
	if err != nil {
		return Value{}, err
	}
	if err := p.end("plist"); err != nil {
		return Value{}, err
	}
	// Nothing but white space, comments and processing instructions after.
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return v, nil
		}
		if err != nil {
			return Value{}, fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		if !ignorable(tok) {
			return Value{}, fmt.Errorf("%w: content after </plist>", ErrSyntax)
		}
	}
}

type parser struct {
	d *xml.Decoder
}

func ignorable(tok xml.Token) bool {
	switch t := tok.(type) {
	case xml.CharData:
		return len(bytes.TrimSpace(t)) == 0
	case xml.Comment, xml.ProcInst, xml.Directive:
		return true
	}
	return false
}

// nextStart returns the next start element, skipping white space,
// comments, the XML declaration and the DOCTYPE.
func (p *parser) nextStart() (xml.StartElement, error) {
	for {
		tok, err := p.d.Token()
		if err != nil {
			return xml.StartElement{}, fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		if s, ok := tok.(xml.StartElement); ok {
			return s, nil
		}
		if !ignorable(tok) {
			return xml.StartElement{}, fmt.Errorf("%w: unexpected %T", ErrSyntax, tok)
		}
	}
}

// end reads up to the end element name, allowing only white space.
func (p *parser) end(name string) error {
	for {
		tok, err := p.d.Token()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		if e, ok := tok.(xml.EndElement); ok && e.Name.Local == name {
			return nil
		}
		if !ignorable(tok) {
			return fmt.Errorf("%w: unexpected content in <%s>", ErrSyntax, name)
		}
	}
}

// text reads the character data of a leaf element up to its end.
func (p *parser) text(name string) (string, error) {
	var b strings.Builder
	for {
		tok, err := p.d.Token()
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.Comment:
		case xml.EndElement:
			if t.Name.Local != name {
				return "", fmt.Errorf("%w: </%s> in <%s>", ErrSyntax, t.Name.Local, name)
			}
			return b.String(), nil
		default:
			return "", fmt.Errorf("%w: element inside <%s>", ErrSyntax, name)
		}
	}
}

func (p *parser) value(s xml.StartElement, depth int) (Value, error) {
	if depth > MaxDepth {
		return Value{}, fmt.Errorf("%w: nested deeper than %d", ErrSyntax, MaxDepth)
	}
	if s.Name.Space != "" || len(s.Attr) != 0 {
		return Value{}, fmt.Errorf("%w: <%s> with a namespace or attributes", ErrSyntax, s.Name.Local)
	}
	name := s.Name.Local
	switch name {
	case "true", "false":
		if err := p.end(name); err != nil {
			return Value{}, err
		}
		return Value{Kind: Bool, Bool: name == "true"}, nil
	case "string":
		t, err := p.text(name)
		return Value{Kind: String, Str: t}, err
	case "integer":
		t, err := p.text(name)
		if err != nil {
			return Value{}, err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
		if err != nil {
			return Value{}, fmt.Errorf("%w: integer %q", ErrSyntax, t)
		}
		return Value{Kind: Integer, Int: n}, nil
	case "real":
		t, err := p.text(name)
		if err != nil {
			return Value{}, err
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return Value{}, fmt.Errorf("%w: real %q", ErrSyntax, t)
		}
		return Value{Kind: Real, Float: f}, nil
	case "data":
		t, err := p.text(name)
		if err != nil {
			return Value{}, err
		}
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(t), ""))
		if err != nil {
			return Value{}, fmt.Errorf("%w: data: %v", ErrSyntax, err)
		}
		return Value{Kind: Data, Bytes: b}, nil
	case "date":
		t, err := p.text(name)
		if err != nil {
			return Value{}, err
		}
		tm, err := time.Parse(dateLayout, strings.TrimSpace(t))
		if err != nil {
			return Value{}, fmt.Errorf("%w: date %q", ErrSyntax, t)
		}
		return Value{Kind: Date, Time: tm.UTC()}, nil
	case "array":
		v := Value{Kind: Array, Items: []Value{}}
		for {
			tok, err := p.elementOrEnd(name)
			if err != nil {
				return Value{}, err
			}
			if tok == nil {
				return v, nil
			}
			it, err := p.value(*tok, depth+1)
			if err != nil {
				return Value{}, err
			}
			v.Items = append(v.Items, it)
		}
	case "dict":
		v := Value{Kind: Dict, Dict: []Entry{}}
		for {
			tok, err := p.elementOrEnd(name)
			if err != nil {
				return Value{}, err
			}
			if tok == nil {
				return v, nil
			}
			if tok.Name.Local != "key" || len(tok.Attr) != 0 {
				return Value{}, fmt.Errorf("%w: <%s> where a <key> belongs", ErrSyntax, tok.Name.Local)
			}
			key, err := p.text("key")
			if err != nil {
				return Value{}, err
			}
			if _, dup := v.Get(key); dup {
				return Value{}, fmt.Errorf("%w: key %q twice", ErrSyntax, key)
			}
			vs, err := p.elementOrEnd(name)
			if err != nil {
				return Value{}, err
			}
			if vs == nil {
				return Value{}, fmt.Errorf("%w: key %q without a value", ErrSyntax, key)
			}
			val, err := p.value(*vs, depth+1)
			if err != nil {
				return Value{}, err
			}
			v.Dict = append(v.Dict, Entry{Key: key, Value: val})
		}
	}
	return Value{}, fmt.Errorf("%w: unknown element <%s>", ErrSyntax, name)
}

// elementOrEnd returns the next child element, or nil at the end element
// of parent.
func (p *parser) elementOrEnd(parent string) (*xml.StartElement, error) {
	for {
		tok, err := p.d.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return &t, nil
		case xml.EndElement:
			if t.Name.Local != parent {
				return nil, fmt.Errorf("%w: </%s> in <%s>", ErrSyntax, t.Name.Local, parent)
			}
			return nil, nil
		default:
			if !ignorable(tok) {
				return nil, fmt.Errorf("%w: text in <%s>", ErrSyntax, parent)
			}
		}
	}
}

// dateLayout is the property list date format (ISO 8601, UTC).
const dateLayout = "2006-01-02T15:04:05Z"

// header starts every document Encode writes, as Apple's tools write it.
const header = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
`

// Encode writes v as an XML property list document, indented with tabs
// as Apple's tools do. Strings must be valid XML text: Encode fails on a
// string with characters XML 1.0 cannot carry (most control characters).
func Encode(v Value) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(header)
	if err := encode(&b, v, 0); err != nil {
		return nil, err
	}
	b.WriteString("</plist>\n")
	return b.Bytes(), nil
}

func indent(b *bytes.Buffer, n int) {
	for range n {
		b.WriteByte('\t')
	}
}

func escape(b *bytes.Buffer, s string) error {
	for _, r := range s {
		if !xmlChar(r) {
			return fmt.Errorf("plist: encode: character %U not allowed in XML", r)
		}
	}
	return xml.EscapeText(b, []byte(s))
}

// xmlChar reports whether r is a Char of XML 1.0 that survives a round
// trip (CR is normalised to LF by XML parsers, so it is refused too).
func xmlChar(r rune) bool {
	return r == '\t' || r == '\n' || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

func encode(b *bytes.Buffer, v Value, depth int) error {
	if depth >= MaxDepth {
		return fmt.Errorf("plist: encode: nested deeper than %d", MaxDepth)
	}
	indent(b, depth)
	switch v.Kind {
	case String:
		b.WriteString("<string>")
		if err := escape(b, v.Str); err != nil {
			return err
		}
		b.WriteString("</string>\n")
	case Integer:
		fmt.Fprintf(b, "<integer>%d</integer>\n", v.Int)
	case Real:
		if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
			return errors.New("plist: encode: real is not finite")
		}
		fmt.Fprintf(b, "<real>%s</real>\n", strconv.FormatFloat(v.Float, 'g', -1, 64))
	case Bool:
		if v.Bool {
			b.WriteString("<true/>\n")
		} else {
			b.WriteString("<false/>\n")
		}
	case Data:
		fmt.Fprintf(b, "<data>%s</data>\n", base64.StdEncoding.EncodeToString(v.Bytes))
	case Date:
		fmt.Fprintf(b, "<date>%s</date>\n", v.Time.UTC().Format(dateLayout))
	case Array:
		if len(v.Items) == 0 {
			b.WriteString("<array/>\n")
			return nil
		}
		b.WriteString("<array>\n")
		for _, it := range v.Items {
			if err := encode(b, it, depth+1); err != nil {
				return err
			}
		}
		indent(b, depth)
		b.WriteString("</array>\n")
	case Dict:
		if len(v.Dict) == 0 {
			b.WriteString("<dict/>\n")
			return nil
		}
		b.WriteString("<dict>\n")
		for _, e := range v.Dict {
			indent(b, depth+1)
			b.WriteString("<key>")
			if err := escape(b, e.Key); err != nil {
				return err
			}
			b.WriteString("</key>\n")
			if err := encode(b, e.Value, depth+1); err != nil {
				return err
			}
		}
		indent(b, depth)
		b.WriteString("</dict>\n")
	default:
		return fmt.Errorf("plist: encode: unknown kind %d", v.Kind)
	}
	return nil
}
