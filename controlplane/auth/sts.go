package auth

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"
)

// maxSTSResponse caps the STS answer read (check 8).
const maxSTSResponse = 64 << 10

// callerIdentity is a well-formed GetCallerIdentity answer.
type callerIdentity struct {
	Account string
	ARN     string
	UserID  string
}

var (
	assumedRoleRE = regexp.MustCompile(`^arn:(aws(?:-[a-z]+)*):sts::([0-9]{12}):assumed-role/([\w+=,.@-]{1,64})/([\w+=,.@-]{2,64})$`)
	roleIDRE      = regexp.MustCompile(`^AROA[A-Z0-9]{8,128}$`)
)

// callSTS sends the rebuilt request (never the client's bytes) to the
// configured STS endpoint or the regional one, retrying a bounded number of
// times with backoff when STS is unavailable (check 8).
func (v *Verifier) callSTS(ctx context.Context, sl *signedLogin) (callerIdentity, error) {
	var last error
	for attempt := 0; attempt < v.retry.Attempts; attempt++ {
		if attempt > 0 {
			if err := v.sleep(ctx, v.retry.backoff(attempt)); err != nil {
				break
			}
		}
		id, retryable, err := v.stsOnce(ctx, sl)
		if err == nil {
			return id, nil
		}
		last = err
		if !retryable {
			return callerIdentity{}, err
		}
		v.log.WarnContext(ctx, "STS unavailable", "attempt", attempt+1, "error", err)
	}
	if p := asProblem(last); p != nil {
		return callerIdentity{}, p
	}
	return callerIdentity{}, unavailable(ReasonSTSUnavailable, "STS did not answer")
}

func (v *Verifier) stsOnce(ctx context.Context, sl *signedLogin) (callerIdentity, bool, error) {
	target := "https://" + sl.host + "/"
	if v.stsOverride != nil {
		target = v.stsOverride.Scheme + "://" + v.stsOverride.Host + "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(sl.tok.Body))
	if err != nil {
		return callerIdentity{}, false, unavailable(ReasonSTSUnavailable, "cannot build the STS request")
	}
	req.Host = sl.host
	req.Header.Set("Authorization", sl.tok.Header.Get("Authorization"))
	for _, h := range sl.auth.signedHeaders {
		switch h {
		case "host", "content-length":
			continue
		}
		req.Header[canonical(h)] = append([]string(nil), sl.tok.Header.Values(canonical(h))...)
	}
	resp, err := v.httpClient.Do(req)
	if err != nil {
		return callerIdentity{}, true, unavailable(ReasonSTSUnavailable, "STS could not be reached")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSTSResponse+1))
	if err != nil {
		return callerIdentity{}, true, unavailable(ReasonSTSUnavailable, "reading the STS answer failed")
	}
	if len(body) > maxSTSResponse {
		return callerIdentity{}, false, unauthenticated(ReasonSTSBadResponse, "the STS answer is too large")
	}
	if resp.StatusCode != http.StatusOK {
		code := stsErrorCode(body)
		v.log.WarnContext(ctx, "STS refused GetCallerIdentity", "status", resp.StatusCode, "code", code, "body", truncate(body, 2048))
		switch {
		case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, throttlingCodes[code]:
			return callerIdentity{}, true, unavailable(ReasonSTSUnavailable, fmt.Sprintf("STS answered %d %s", resp.StatusCode, code))
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			return callerIdentity{}, false, unauthenticated(ReasonSTSBadResponse, "STS answered a redirect, which is not followed")
		case code != "":
			return callerIdentity{}, false, unauthenticated(ReasonSTSRejected, "STS rejected the signed request ("+code+")")
		}
		return callerIdentity{}, false, unauthenticated(ReasonSTSBadResponse, fmt.Sprintf("STS answered %d", resp.StatusCode))
	}
	id, err := parseCallerIdentity(resp.Header.Get("Content-Type"), body)
	if err != nil {
		v.log.WarnContext(ctx, "malformed STS answer", "error", err, "body", truncate(body, 2048))
		return callerIdentity{}, false, unauthenticated(ReasonSTSBadResponse, "the STS answer is not a well-formed GetCallerIdentityResponse")
	}
	return id, false, nil
}

var throttlingCodes = map[string]bool{
	"Throttling": true, "ThrottlingException": true, "RequestLimitExceeded": true,
	"TooManyRequestsException": true, "ServiceUnavailable": true, "InternalFailure": true,
	"RequestThrottled": true,
}

// stsErrorCode extracts <Error><Code> from an AWS XML error, "" if none.
func stsErrorCode(body []byte) string {
	var e struct {
		XMLName xml.Name `xml:"ErrorResponse"`
		Code    string   `xml:"Error>Code"`
	}
	if xml.Unmarshal(body, &e) != nil || !validCode(e.Code) {
		return ""
	}
	return e.Code
}

func validCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.') {
			return false
		}
	}
	return true
}

type xmlIdentity struct {
	XMLName xml.Name `xml:"GetCallerIdentityResponse"`
	Results []struct {
		Arn     []string `xml:"Arn"`
		UserID  []string `xml:"UserId"`
		Account []string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
}

// parseCallerIdentity checks the content type and the exact shape: one
// GetCallerIdentityResponse root with one result holding exactly one
// non-empty Arn, UserId and Account, and nothing after the root.
func parseCallerIdentity(contentType string, body []byte) (callerIdentity, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || (mt != "text/xml" && mt != "application/xml") {
		return callerIdentity{}, fmt.Errorf("auth: STS content type %q is not XML", contentType)
	}
	dec := xml.NewDecoder(bytes.NewReader(body))
	var r xmlIdentity
	if err := dec.Decode(&r); err != nil {
		return callerIdentity{}, fmt.Errorf("auth: decoding STS answer: %w", err)
	}
	for {
		t, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return callerIdentity{}, fmt.Errorf("auth: decoding STS answer: %w", err)
		}
		switch t := t.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return callerIdentity{}, errors.New("auth: data after the STS answer")
			}
		case xml.Comment, xml.ProcInst:
		default:
			return callerIdentity{}, errors.New("auth: data after the STS answer")
		}
	}
	if len(r.Results) != 1 {
		return callerIdentity{}, fmt.Errorf("auth: STS answer has %d results", len(r.Results))
	}
	res := r.Results[0]
	if len(res.Arn) != 1 || len(res.UserID) != 1 || len(res.Account) != 1 {
		return callerIdentity{}, errors.New("auth: STS answer must have one Arn, UserId and Account")
	}
	id := callerIdentity{ARN: strings.TrimSpace(res.Arn[0]), UserID: strings.TrimSpace(res.UserID[0]), Account: strings.TrimSpace(res.Account[0])}
	if id.ARN == "" || id.UserID == "" || id.Account == "" {
		return callerIdentity{}, errors.New("auth: STS answer has an empty Arn, UserId or Account")
	}
	return id, nil
}

// assumedRole is the caller once check 9 passed.
type assumedRole struct {
	Partition string
	Account   string
	RoleName  string
	Session   string
	RoleID    string // unique-ID part of UserId
	ARN       string // the STS assumed-role ARN
}

// parseAssumedRole runs check 9.
func parseAssumedRole(id callerIdentity) (assumedRole, error) {
	m := assumedRoleRE.FindStringSubmatch(id.ARN)
	if m == nil {
		return assumedRole{}, unauthenticated(ReasonNotAssumedRole, "the caller is not an assumed IAM role (use the ECS task role)")
	}
	if m[2] != id.Account {
		return assumedRole{}, unauthenticated(ReasonNotAssumedRole, "the caller's ARN and account disagree")
	}
	roleID, session, ok := strings.Cut(id.UserID, ":")
	if !ok || session != m[4] || !roleIDRE.MatchString(roleID) {
		return assumedRole{}, unauthenticated(ReasonNotAssumedRole, "the caller's UserId is not <role ID>:<session>")
	}
	return assumedRole{Partition: m[1], Account: m[2], RoleName: m[3], Session: m[4], RoleID: roleID, ARN: id.ARN}, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}
