package sigv4check

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func signed(t *testing.T, c Credential, body, service, region string, at time.Time, mutate func(*http.Request)) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "https://sts.us-east-1.amazonaws.com/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	r.Header.Set("X-Ecsmesh-Server-Id", "cp")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), c.AWS(), r, hex.EncodeToString(sum[:]), service, region, at); err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(r)
	}
	return r
}

func TestVerify(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	v := NewVerifier(func() time.Time { return now })
	c := v.Issue(Principal{Account: "111122223333", ARN: "arn:aws:sts::111122223333:assumed-role/web/s", UserID: "AROA:s"}, time.Hour)
	other := Credential{AccessKeyID: "AKIAOTHER", SecretAccessKey: "x"}
	body := "Action=GetCallerIdentity&Version=2011-06-15"
	tests := []struct {
		name    string
		req     func() *http.Request
		body    string
		service string
		code    string
	}{
		{"ok", func() *http.Request { return signed(t, c, body, "sts", "us-east-1", now, nil) }, body, "sts", ""},
		{"unknown key", func() *http.Request { return signed(t, other, body, "sts", "us-east-1", now, nil) }, body, "sts", "InvalidClientTokenId"},
		{"body changed", func() *http.Request { return signed(t, c, body, "sts", "us-east-1", now, nil) }, body + "&X=1", "sts", "SignatureDoesNotMatch"},
		{"signed header changed", func() *http.Request {
			return signed(t, c, body, "sts", "us-east-1", now, func(r *http.Request) { r.Header.Set("X-Ecsmesh-Server-Id", "evil") })
		}, body, "sts", "SignatureDoesNotMatch"},
		{"host changed", func() *http.Request {
			return signed(t, c, body, "sts", "us-east-1", now, func(r *http.Request) { r.Host = "evil.example" })
		}, body, "sts", "SignatureDoesNotMatch"},
		{"wrong service", func() *http.Request { return signed(t, c, body, "iam", "us-east-1", now, nil) }, body, "sts", "SignatureDoesNotMatch"},
		{"stale", func() *http.Request { return signed(t, c, body, "sts", "us-east-1", now.Add(-16*time.Minute), nil) }, body, "sts", "SignatureDoesNotMatch"},
		{"no auth", func() *http.Request {
			return signed(t, c, body, "sts", "us-east-1", now, func(r *http.Request) { r.Header.Del("Authorization") })
		}, body, "sts", "MissingAuthenticationToken"},
		{"wrong session token", func() *http.Request {
			return signed(t, c, body, "sts", "us-east-1", now, func(r *http.Request) { r.Header.Set("X-Amz-Security-Token", "nope") })
		}, body, "sts", "InvalidClientTokenId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(tt.req(), []byte(tt.body), tt.service)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got.Principal.Account != "111122223333" {
					t.Fatalf("principal = %+v", got.Principal)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != tt.code {
				t.Fatalf("err = %v, want code %s", err, tt.code)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		later := now.Add(2 * time.Hour)
		v2 := NewVerifier(func() time.Time { return later })
		v2.Add(c)
		_, err := v2.Verify(signed(t, c, body, "sts", "us-east-1", later, nil), []byte(body), "sts")
		var e *Error
		if !errors.As(err, &e) || e.Code != "ExpiredToken" {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestWriteXML(t *testing.T) {
	w := httptest.NewRecorder()
	WriteXML(w, Errorf(403, "SignatureDoesNotMatch", "bad"), "https://sts.amazonaws.com/doc/2011-06-15/", "rid")
	b, _ := io.ReadAll(w.Result().Body)
	if w.Code != 403 || !strings.Contains(string(b), "<Code>SignatureDoesNotMatch</Code>") || !strings.Contains(string(b), "<Type>Sender</Type>") {
		t.Fatalf("%d %s", w.Code, b)
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=ab")
	f.Add("AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAuthorization(s)
		if err == nil && (a.AccessKeyID == "" || len(a.SignedHeaders) == 0) {
			t.Fatalf("accepted %q", s)
		}
	})
}
