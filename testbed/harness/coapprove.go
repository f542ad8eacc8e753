//go:build linux

package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
)

var phoneCoResult = regexp.MustCompile(`^(\{.*"event":"co-approval-result".*)$`)

// ListenSecond starts phone p answering the next request for its second
// approval of another technician's login (SPEC.md 11.14) with answer
// (`listen --json --once --approve` or `--deny`) and waits until it
// listens.
func (w *World) ListenSecond(ctx context.Context, p *Phone, answer string) (*Proc, error) {
	l, err := p.Start("second"+answer, "--json", "listen", "--once", answer)
	if err != nil {
		return nil, err
	}
	if _, err := l.WaitFor(ctx, 0, phoneListening); err != nil {
		return l, err
	}
	return l, nil
}

// SecondResult waits for the result line of a phone started by
// ListenSecond and returns its status ("approved", "denied", "refused").
func SecondResult(ctx context.Context, l *Proc) (string, error) {
	m, err := l.WaitFor(ctx, 0, phoneCoResult)
	if err != nil {
		return "", err
	}
	var r struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(m[1]), &r); err != nil {
		return "", fmt.Errorf("second approval result %q: %w", m[1], err)
	}
	return r.Status, nil
}
