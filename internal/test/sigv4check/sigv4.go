// Package sigv4check verifies AWS Signature Version 4 on requests received by
// ecsmesh's fake AWS services (fakests, fakeiam, fakeecs, fakeroute53). The fakes
// issue their own credentials (access key, secret, session token, expiry);
// a Verifier checks that an incoming request was signed with one of them by
// recomputing the signature with the AWS SDK's own signer
// (github.com/aws/aws-sdk-go-v2/aws/signer/v4) over the headers the request
// says it signed, and comparing in constant time. It also checks the
// credential scope (service, region, date), the clock skew, the session
// token and the credential's expiry.
//
// Errors are *Error values carrying the AWS error code and HTTP status;
// WriteXML and WriteJSON render them in the query/REST-XML and JSON 1.1
// wire shapes so the real SDK decodes them.
package sigv4check

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// DefaultMaxSkew is how far X-Amz-Date may be from the fake's clock.
const DefaultMaxSkew = 15 * time.Minute

const (
	algorithm  = "AWS4-HMAC-SHA256"
	timeFormat = "20060102T150405Z"
	dateFormat = "20060102"
)

// Principal is who a credential belongs to.
type Principal struct {
	// Account is the 12-digit account ID.
	Account string
	// ARN is the caller ARN GetCallerIdentity returns, e.g.
	// arn:aws:sts::111122223333:assumed-role/web/task-id.
	ARN string
	// UserID is the caller's unique ID, e.g. AROAEXAMPLE:task-id.
	UserID string
}

// Credential is a credential the fake issued.
type Credential struct {
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken is empty for long-term credentials.
	SessionToken string
	// Expires is zero for credentials that never expire.
	Expires time.Time
	// Principal is who signs with it.
	Principal Principal
}

// AWS returns the credential in the SDK's form, for tests that sign with
// the real SDK (credentials.NewStaticCredentialsProvider or aws.Config).
func (c Credential) AWS() aws.Credentials {
	return aws.Credentials{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		SessionToken:    c.SessionToken,
		CanExpire:       !c.Expires.IsZero(),
		Expires:         c.Expires,
		Source:          "ecsmesh-sigv4check",
	}
}

// Retrieve implements aws.CredentialsProvider, so a Credential can be put
// straight into an aws.Config.
func (c Credential) Retrieve(context.Context) (aws.Credentials, error) { return c.AWS(), nil }

// Error is an AWS error: a code such as SignatureDoesNotMatch, a message and
// the HTTP status.
type Error struct {
	Status  int
	Code    string
	Message string
	// Sender is true for client errors (the XML <Type>Sender</Type>).
	Sender bool
}

// Error implements error.
func (e *Error) Error() string { return "sigv4check: " + e.Code + ": " + e.Message }

// Errorf returns an *Error; status < 500 marks it a Sender error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...), Sender: status < 500}
}

// Authorization is a parsed SigV4 Authorization header.
type Authorization struct {
	AccessKeyID   string
	Date          string // yyyymmdd
	Region        string
	Service       string
	SignedHeaders []string
	Signature     string
}

// ParseAuthorization parses
// "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/sts/aws4_request,
// SignedHeaders=a;b, Signature=hex".
func ParseAuthorization(h string) (Authorization, error) {
	var a Authorization
	rest, ok := strings.CutPrefix(h, algorithm+" ")
	if !ok {
		return a, fmt.Errorf("sigv4check: authorization does not use %s", algorithm)
	}
	var cred, signed, sig string
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, fmt.Errorf("sigv4check: malformed authorization component %q", part)
		}
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		default:
			return a, fmt.Errorf("sigv4check: unknown authorization component %q", k)
		}
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || scope[0] == "" {
		return a, fmt.Errorf("sigv4check: malformed credential scope %q", cred)
	}
	if signed == "" || sig == "" {
		return a, fmt.Errorf("sigv4check: authorization lacks SignedHeaders or Signature")
	}
	a = Authorization{AccessKeyID: scope[0], Date: scope[1], Region: scope[2], Service: scope[3],
		SignedHeaders: strings.Split(signed, ";"), Signature: sig}
	return a, nil
}

// Signed reports whether the lower-case header name is in SignedHeaders.
func (a Authorization) Signed(name string) bool {
	name = strings.ToLower(name)
	for _, h := range a.SignedHeaders {
		if h == name {
			return true
		}
	}
	return false
}

// Verifier holds the credentials a fake issued and verifies requests
// signed with them. The zero value is not usable; call NewVerifier. Safe for
// concurrent use.
type Verifier struct {
	now     func() time.Time
	maxSkew time.Duration
	signer  *v4.Signer

	mu    sync.RWMutex
	creds map[string]Credential
}

// NewVerifier returns a Verifier whose clock is now (time.Now when nil).
func NewVerifier(now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{now: now, maxSkew: DefaultMaxSkew, signer: v4.NewSigner(), creds: map[string]Credential{}}
}

// Now returns the verifier's clock reading.
func (v *Verifier) Now() time.Time { return v.now() }

// Issue creates a temporary credential for p valid for ttl (forever when
// ttl is 0; such a credential has no session token).
func (v *Verifier) Issue(p Principal, ttl time.Duration) Credential {
	c := Credential{Principal: p}
	if ttl > 0 {
		c.AccessKeyID = "ASIA" + randomString(16)
		c.SessionToken = "FQoGZXIvYXdzE" + randomString(120)
		c.Expires = v.now().Add(ttl).UTC().Truncate(time.Second)
	} else {
		c.AccessKeyID = "AKIA" + randomString(16)
	}
	c.SecretAccessKey = randomString(40)
	v.Add(c)
	return c
}

// Add registers a credential (for fixed test credentials).
func (v *Verifier) Add(c Credential) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.creds[c.AccessKeyID] = c
}

// Revoke forgets a credential; requests signed with it fail with
// InvalidClientTokenId.
func (v *Verifier) Revoke(accessKeyID string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.creds, accessKeyID)
}

// Lookup returns the credential with that access key.
func (v *Verifier) Lookup(accessKeyID string) (Credential, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	c, ok := v.creds[accessKeyID]
	return c, ok
}

// Verify checks r's SigV4 signature for service over body (the full request
// body, already read). It returns the credential that signed it, or an
// *Error with the code AWS would answer: IncompleteSignature,
// InvalidClientTokenId, ExpiredToken, SignatureDoesNotMatch,
// RequestTimeTooSkewed or InvalidSignatureException-style scope errors.
func (v *Verifier) Verify(r *http.Request, body []byte, service string) (Credential, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Credential{}, Errorf(http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token")
	}
	a, err := ParseAuthorization(h)
	if err != nil {
		return Credential{}, Errorf(http.StatusBadRequest, "IncompleteSignature", "%v", err)
	}
	c, ok := v.Lookup(a.AccessKeyID)
	if !ok {
		return Credential{}, Errorf(http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
	}
	if a.Service != service {
		return Credential{}, Errorf(http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to correct service: '%s'.", service)
	}
	if !validRegion(a.Region) {
		return Credential{}, Errorf(http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to a valid region.")
	}
	now := v.now()
	if !c.Expires.IsZero() && !now.Before(c.Expires) {
		return Credential{}, Errorf(http.StatusForbidden, "ExpiredToken", "The security token included in the request is expired")
	}
	signTime, err := time.Parse(timeFormat, r.Header.Get("X-Amz-Date"))
	if err != nil || !a.Signed("x-amz-date") {
		return Credential{}, Errorf(http.StatusBadRequest, "IncompleteSignature", "Authorization header requires a signed X-Amz-Date header.")
	}
	if signTime.Format(dateFormat) != a.Date {
		return Credential{}, Errorf(http.StatusForbidden, "SignatureDoesNotMatch", "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s'", a.Date, signTime.Format(dateFormat))
	}
	if d := now.Sub(signTime); d > v.maxSkew || d < -v.maxSkew {
		return Credential{}, Errorf(http.StatusForbidden, "SignatureDoesNotMatch", "Signature expired: %s is now earlier than %s (%s - 15 min.)", signTime.Format(timeFormat), now.Add(-v.maxSkew).UTC().Format(timeFormat), now.UTC().Format(timeFormat))
	}
	if c.SessionToken != "" {
		got := r.Header.Get("X-Amz-Security-Token")
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(c.SessionToken)) != 1 {
			return Credential{}, Errorf(http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
		}
	}
	want, err := v.expected(r, body, a, c, signTime)
	if err != nil {
		return Credential{}, err
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(h)) != 1 {
		return Credential{}, Errorf(http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return c, nil
}

// expected recomputes the Authorization header with the SDK signer over a
// copy of r that carries only the headers r claims it signed.
func (v *Verifier) expected(r *http.Request, body []byte, a Authorization, c Credential, signTime time.Time) (string, error) {
	u := *r.URL
	u.Scheme, u.Host = "https", r.Host
	cp, err := http.NewRequest(r.Method, u.String(), nil)
	if err != nil {
		return "", Errorf(http.StatusBadRequest, "IncompleteSignature", "cannot rebuild request: %v", err)
	}
	cp.Host = r.Host
	for _, name := range a.SignedHeaders {
		switch name {
		case "host":
			continue
		case "content-length":
			n, err := strconv.ParseInt(r.Header.Get("Content-Length"), 10, 64)
			if err != nil {
				n = r.ContentLength
			}
			cp.ContentLength = n
			continue
		}
		vals := r.Header.Values(name)
		if len(vals) == 0 {
			return "", Errorf(http.StatusForbidden, "SignatureDoesNotMatch", "signed header %s is missing", name)
		}
		cp.Header[http.CanonicalHeaderKey(name)] = append([]string(nil), vals...)
	}
	sum := sha256.Sum256(body)
	creds := c.AWS()
	if !a.Signed("x-amz-security-token") {
		creds.SessionToken = ""
	}
	if err := v.signer.SignHTTP(context.Background(), creds, cp, hex.EncodeToString(sum[:]), a.Service, a.Region, signTime); err != nil {
		return "", Errorf(http.StatusInternalServerError, "InternalFailure", "signing: %v", err)
	}
	return cp.Header.Get("Authorization"), nil
}

func validRegion(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
