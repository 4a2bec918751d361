package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// MaxLoginTokenSize is the largest login token accepted (check 1).
const MaxLoginTokenSize = 16 << 10

// LoginToken is a decoded login token: the signed, unsent
// sts:GetCallerIdentity request.
type LoginToken struct {
	Method string
	URL    *url.URL
	// Header has canonical names; it never holds Host.
	Header http.Header
	Body   []byte
}

type wireToken struct {
	Method  string `json:"iam_http_request_method"`
	URL     string `json:"iam_request_url"`
	Headers string `json:"iam_request_headers"`
	Body    string `json:"iam_request_body"`
}

// DecodeLoginToken decodes a login token strictly: standard padded base64,
// a JSON object with exactly the four known fields (no duplicates, no
// unknown fields, nothing after it), each inner value standard base64, a
// parsable URL, a JSON object of header lists whose names are valid,
// distinct once canonicalized and not Host, and values without control
// characters. Errors start with "auth: ".
func DecodeLoginToken(s string) (*LoginToken, error) {
	if len(s) > MaxLoginTokenSize {
		return nil, fmt.Errorf("auth: login token is %d bytes, more than %d", len(s), MaxLoginTokenSize)
	}
	raw, err := strictBase64(s)
	if err != nil {
		return nil, fmt.Errorf("auth: login token: %w", err)
	}
	var w wireToken
	if err := strictJSON(raw, &w, []string{"iam_http_request_method", "iam_request_url", "iam_request_headers", "iam_request_body"}); err != nil {
		return nil, fmt.Errorf("auth: login token: %w", err)
	}
	u, err := strictBase64(w.URL)
	if err != nil {
		return nil, fmt.Errorf("auth: login token URL: %w", err)
	}
	hb, err := strictBase64(w.Headers)
	if err != nil {
		return nil, fmt.Errorf("auth: login token headers: %w", err)
	}
	body, err := strictBase64(w.Body)
	if err != nil {
		return nil, fmt.Errorf("auth: login token body: %w", err)
	}
	if !printable(string(u)) {
		return nil, fmt.Errorf("auth: login token URL has control characters")
	}
	pu, err := url.Parse(string(u))
	if err != nil {
		return nil, fmt.Errorf("auth: login token URL: %w", err)
	}
	var hm map[string][]string
	if err := strictJSON(hb, &hm, nil); err != nil {
		return nil, fmt.Errorf("auth: login token headers: %w", err)
	}
	h := http.Header{}
	for name, vals := range hm {
		if !validHeaderName(name) {
			return nil, fmt.Errorf("auth: login token header name %q is invalid", name)
		}
		cn := http.CanonicalHeaderKey(name)
		if cn == "Host" {
			return nil, fmt.Errorf("auth: login token carries a Host header")
		}
		if _, dup := h[cn]; dup {
			return nil, fmt.Errorf("auth: login token header %s appears twice", cn)
		}
		if len(vals) == 0 {
			return nil, fmt.Errorf("auth: login token header %s has no value", cn)
		}
		for _, v := range vals {
			if !printable(v) {
				return nil, fmt.Errorf("auth: login token header %s has control characters", cn)
			}
		}
		h[cn] = vals
	}
	return &LoginToken{Method: w.Method, URL: pu, Header: h, Body: body}, nil
}

func strictBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("invalid base64: %w", err)
	}
	return b, nil
}

// strictJSON decodes one JSON object into v refusing unknown and (for
// known, non-nil) duplicate keys and trailing data.
func strictJSON(b []byte, v any, known []string) error {
	if known != nil {
		if err := noDuplicateKeys(b, known); err != nil {
			return err
		}
	} else if err := noDuplicateKeys(b, nil); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("invalid JSON: data after the object")
	}
	return nil
}

// noDuplicateKeys checks that b is a JSON object with distinct top-level
// keys (compared exactly; encoding/json matches names case-insensitively,
// so keys must also be exactly the known ones when known is given).
func noDuplicateKeys(b []byte, known []string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	t, err := dec.Token()
	if err != nil || t != json.Delim('{') {
		return fmt.Errorf("invalid JSON: not an object")
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("invalid JSON: %w", err)
		}
		k, _ := t.(string)
		if seen[k] {
			return fmt.Errorf("invalid JSON: key %q twice", k)
		}
		seen[k] = true
		if known != nil && !contains(known, k) {
			return fmt.Errorf("invalid JSON: unknown key %q", k)
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return fmt.Errorf("invalid JSON: %w", err)
		}
	}
	if known != nil && len(seen) != len(known) {
		return fmt.Errorf("invalid JSON: expected keys %s", strings.Join(known, ", "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func validHeaderName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
