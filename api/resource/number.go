package resource

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
)

// Number is a decimal written as a JSON number (50, 1.9) or as a string
// ("2.5"), as Kuma writes percentages and factors. It keeps the form it
// was written in, so that it reads back the same.
type Number struct {
	text   string
	quoted bool
}

var decimalRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// NumberOf returns the Number written as s ("2.5"), or an error.
func NumberOf(s string) (Number, error) {
	if !decimalRE.MatchString(s) {
		return Number{}, fmt.Errorf("must be a decimal number such as 50 or \"2.5\", got %q", s)
	}
	return Number{text: s, quoted: true}, nil
}

// IsSet reports whether the number was written (the zero Number was not).
func (n Number) IsSet() bool { return n.text != "" }

// Float64 returns the value (0 for the zero Number).
func (n Number) Float64() float64 {
	f, _ := strconv.ParseFloat(n.text, 64)
	return f
}

// String returns the number as written.
func (n Number) String() string {
	if n.text == "" {
		return "0"
	}
	return n.text
}

// MarshalJSON writes the number in the form it was read.
func (n Number) MarshalJSON() ([]byte, error) {
	if n.quoted {
		return json.Marshal(n.text)
	}
	return []byte(n.String()), nil
}

// UnmarshalJSON reads 50, 1.9 or "2.5".
func (n *Number) UnmarshalJSON(b []byte) error {
	var s string
	quoted := len(b) > 0 && b[0] == '"'
	if quoted {
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("must be a decimal number such as 50 or \"2.5\"")
		}
	} else {
		s = string(b)
	}
	v, err := NumberOf(s)
	if err != nil {
		return err
	}
	v.quoted = quoted
	*n = v
	return nil
}
