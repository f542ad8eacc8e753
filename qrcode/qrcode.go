// Package qrcode renders jitkey's QR payloads (login and pairing codes) for
// screens — as terminal text and as PNG — and decodes them from pictures,
// as the phone's camera would. Payload text is base45 (protocol.QRPayload),
// so codes use the QR alphanumeric mode.
package qrcode

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // phones send camera pictures as JPEG too
	"image/png"
	"io"
	"os"
	"strings"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"
	"rsc.io/qr"
)

// quiet is the quiet zone, in modules, around a code.
const quiet = 4

// ErrNoCode is returned when a picture holds no readable QR code.
var ErrNoCode = errors.New("qrcode: no QR code found")

// ErrTooLarge is returned for a picture above MaxImageBytes or
// MaxImagePixels.
var ErrTooLarge = errors.New("qrcode: picture too large")

// ErrNotPicture is returned for data that is not a PNG or JPEG picture
// (or a damaged one).
var ErrNotPicture = errors.New("qrcode: not a PNG or JPEG picture")

// ReadFile reads a picture for Decode from the file at path without
// reading more than MaxImageBytes: a larger file is refused from its size
// before it is read (ErrTooLarge), and a file that grows while it is read
// is refused too. The error of a file that cannot be opened wraps the
// *fs.PathError.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrNotPicture, path)
	}
	if fi.Size() > MaxImageBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes", ErrTooLarge, path, fi.Size())
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxImageBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxImageBytes {
		return nil, fmt.Errorf("%w: %s grew beyond %d bytes while read", ErrTooLarge, path, MaxImageBytes)
	}
	return b, nil
}

func encode(text string) (*qr.Code, error) {
	c, err := qr.Encode(text, qr.M)
	if err != nil {
		return nil, fmt.Errorf("qrcode: encode: %w", err)
	}
	return c, nil
}

// Terminal renders text as a QR code with Unicode half blocks, two modules
// per character cell vertically, dark on light, with a quiet zone.
func Terminal(text string) (string, error) {
	c, err := encode(text)
	if err != nil {
		return "", err
	}
	dark := func(x, y int) bool {
		return x >= 0 && y >= 0 && x < c.Size && y < c.Size && c.Black(x, y)
	}
	var b strings.Builder
	for y := -quiet; y < c.Size+quiet; y += 2 {
		for x := -quiet; x < c.Size+quiet; x++ {
			top, bot := dark(x, y), dark(x, y+1)
			switch {
			case top && bot:
				b.WriteRune(' ')
			case top:
				b.WriteRune('▄')
			case bot:
				b.WriteRune('▀')
			default:
				b.WriteRune('█')
			}
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// PNG renders text as a PNG image, scale pixels per module, with a quiet
// zone of four modules.
func PNG(text string, scale int) ([]byte, error) {
	c, err := encode(text)
	if err != nil {
		return nil, err
	}
	if scale < 1 {
		scale = 4
	}
	side := (c.Size + 2*quiet) * scale
	img := image.NewGray(image.Rect(0, 0, side, side))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for y := 0; y < c.Size; y++ {
		for x := 0; x < c.Size; x++ {
			if !c.Black(x, y) {
				continue
			}
			for dy := 0; dy < scale; dy++ {
				row := ((y+quiet)*scale + dy) * img.Stride
				for dx := 0; dx < scale; dx++ {
					img.Pix[row+(x+quiet)*scale+dx] = 0
				}
			}
		}
	}
	var out bytes.Buffer
	if err := png.Encode(&out, img); err != nil {
		return nil, fmt.Errorf("qrcode: png: %w", err)
	}
	return out.Bytes(), nil
}

// MaxImageBytes bounds a picture handed to Decode.
const MaxImageBytes = 8 << 20

// MaxImagePixels bounds the dimensions a picture handed to Decode may
// declare (16 Mpx: a 12 Mpx camera picture fits). A few kilobytes of PNG
// can declare a picture of gigabytes; Decode reads the header first and
// refuses it before decoding.
const MaxImagePixels = 1 << 24

// Decode reads the QR code in a PNG or JPEG picture and returns its text.
func Decode(picture []byte) (string, error) {
	if len(picture) > MaxImageBytes {
		return "", fmt.Errorf("%w: %d bytes", ErrTooLarge, len(picture))
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(picture))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotPicture, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxImagePixels {
		return "", fmt.Errorf("%w: picture of %dx%d pixels is too large", ErrTooLarge, cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(picture))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotPicture, err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", fmt.Errorf("qrcode: %w", err)
	}
	// A camera picture needs the finder-pattern search; a screenshot or a
	// rendered PNG is a "pure" code, which the detector sometimes misreads
	// (about 1 in 100 of rsc.io/qr's renderings, whose mask is fixed), so
	// the pure-code reading is tried when the search fails.
	hints := []map[gozxing.DecodeHintType]interface{}{
		{gozxing.DecodeHintType_TRY_HARDER: true},
		{gozxing.DecodeHintType_PURE_BARCODE: true},
	}
	for _, h := range hints {
		if res, err := zxqr.NewQRCodeReader().Decode(bmp, h); err == nil {
			return res.GetText(), nil
		}
	}
	return "", ErrNoCode
}

// SVG renders text as an SVG image: one path of dark modules on a light
// square with a quiet zone of four modules, scaled by the viewer (the
// image has a viewBox and no fixed size). title, if not empty, becomes
// the image's accessible name; it is escaped.
func SVG(text, title string) (string, error) {
	c, err := encode(text)
	if err != nil {
		return "", err
	}
	side := c.Size + 2*quiet
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges" role="img"`, side, side)
	if title != "" {
		b.WriteString(` aria-label="`)
		xml.EscapeText(&b, []byte(title))
		b.WriteString(`"`)
	}
	fmt.Fprintf(&b, `><rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, side, side)
	for y := 0; y < c.Size; y++ {
		for x := 0; x < c.Size; x++ {
			if c.Black(x, y) {
				fmt.Fprintf(&b, "M%d %dh1v1h-1z", x+quiet, y+quiet)
			}
		}
	}
	b.WriteString(`"/></svg>`)
	return b.String(), nil
}
