package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// MaxRequestAge is how far X-Amz-Date may be from the CP's clock, and how
// long a used signature is remembered (check 7).
const MaxRequestAge = 15 * time.Minute

const amzTimeFormat = "20060102T150405Z"

// maxCachedRegions bounds the cache of resolved STS hosts.
const maxCachedRegions = 512

var (
	regionRE    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	akidRE      = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
	signatureRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	headerRE    = regexp.MustCompile(`^[a-z0-9-]+(;[a-z0-9-]+)*$`)
	dateRE      = regexp.MustCompile(`^[0-9]{8}$`)
)

// allowedAmzHeaders are the only X-Amz-* headers a login may carry
// (check 5).
var allowedAmzHeaders = map[string]bool{
	"X-Amz-Algorithm": true, "X-Amz-Content-Sha256": true, "X-Amz-Credential": true,
	"X-Amz-Date": true, "X-Amz-Security-Token": true, "X-Amz-Signature": true,
	"X-Amz-Signedheaders": true,
}

// sigAuth is the parsed Authorization header.
type sigAuth struct {
	accessKeyID   string
	date          string
	region        string
	signedHeaders []string
	signature     string
}

func (a sigAuth) signed(name string) bool {
	name = strings.ToLower(name)
	for _, h := range a.signedHeaders {
		if h == name {
			return true
		}
	}
	return false
}

// signedLogin is a login request that passed checks 1–7 except the
// single-use claim.
type signedLogin struct {
	tok    *LoginToken
	auth   sigAuth
	host   string
	date   time.Time
	sigKey string // hex sha256 of the signature: the replay record's name
}

// parseAuthorization parses the SigV4 Authorization header strictly.
func parseAuthorization(h string) (sigAuth, bool) {
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return sigAuth{}, false
	}
	parts := strings.Split(rest, ", ")
	if len(parts) != 3 {
		return sigAuth{}, false
	}
	cred, ok1 := strings.CutPrefix(parts[0], "Credential=")
	signed, ok2 := strings.CutPrefix(parts[1], "SignedHeaders=")
	sig, ok3 := strings.CutPrefix(parts[2], "Signature=")
	if !ok1 || !ok2 || !ok3 || !headerRE.MatchString(signed) || !signatureRE.MatchString(sig) {
		return sigAuth{}, false
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[3] != "sts" || scope[4] != "aws4_request" || !akidRE.MatchString(scope[0]) || !dateRE.MatchString(scope[1]) {
		return sigAuth{}, false
	}
	return sigAuth{accessKeyID: scope[0], date: scope[1], region: scope[2], signedHeaders: strings.Split(signed, ";"), signature: sig}, true
}

// checkRequest runs checks 2–7 (all but the replay claim) on a decoded
// token.
func (v *Verifier) checkRequest(ctx context.Context, tok *LoginToken) (*signedLogin, error) {
	// 2. method, scheme, path, query.
	if tok.Method != "POST" {
		return nil, unauthenticated(ReasonBadMethod, "the signed request must be a POST")
	}
	u := tok.URL
	if u.Opaque != "" || u.User != nil || u.Fragment != "" || u.RawFragment != "" {
		return nil, unauthenticated(ReasonBadPath, "the signed request URL must be https://<sts host>/")
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, unauthenticated(ReasonHasQuery, "the signed request URL must not have a query string")
	}
	if u.Path != "/" || (u.RawPath != "" && u.RawPath != "/") {
		return nil, unauthenticated(ReasonBadPath, "the signed request path must be /")
	}
	override := v.stsOverride != nil && u.Scheme == v.stsOverride.Scheme && strings.EqualFold(u.Host, v.stsOverride.Host)
	if u.Scheme != "https" && !override {
		return nil, unauthenticated(ReasonBadScheme, "the signed request must use https")
	}
	// 3. host from the signing region.
	authz := tok.Header.Values("Authorization")
	if len(authz) != 1 {
		return nil, unauthenticated(ReasonBadAuthorization, "the signed request needs one SigV4 Authorization header")
	}
	a, ok := parseAuthorization(authz[0])
	if !ok {
		return nil, unauthenticated(ReasonBadAuthorization, "the Authorization header is not a SigV4 signature for sts")
	}
	if !regionRE.MatchString(a.region) {
		return nil, unauthenticated(ReasonBadRegion, "the credential scope's region is malformed")
	}
	if !override {
		ok, err := v.stsHostAllowed(ctx, a.region, u.Host)
		if err != nil {
			return nil, unauthenticated(ReasonBadRegion, "no STS endpoint for the signing region")
		}
		if !ok {
			return nil, unauthenticated(ReasonBadHost, "the signed request is not addressed to the STS endpoint of its signing region")
		}
	}
	if !a.signed("host") || !a.signed("x-amz-date") {
		return nil, unauthenticated(ReasonBadAuthorization, "the signature must cover host and x-amz-date")
	}
	// 4. body.
	if !validBody(tok.Body) {
		return nil, unauthenticated(ReasonBadBody, "the body must be exactly Action=GetCallerIdentity and Version")
	}
	if a.signed("content-length") && len(tok.Header.Values("Content-Length")) > 0 {
		if n, err := strconv.Atoi(tok.Header.Get("Content-Length")); err != nil || n != len(tok.Body) || len(tok.Header.Values("Content-Length")) != 1 {
			return nil, unauthenticated(ReasonBadBody, "Content-Length does not match the body")
		}
	}
	// 5. X-Amz-* headers.
	for name, vals := range tok.Header {
		if strings.HasPrefix(name, "X-Amz-") && !allowedAmzHeaders[name] {
			return nil, unauthenticated(ReasonBadHeader, "header "+name+" is not allowed")
		}
		if strings.HasPrefix(name, "X-Amz-") && len(vals) != 1 {
			return nil, unauthenticated(ReasonBadHeader, "header "+name+" must appear once")
		}
	}
	for _, h := range a.signedHeaders {
		if strings.HasPrefix(h, "x-amz-") && !allowedAmzHeaders[canonical(h)] {
			return nil, unauthenticated(ReasonBadHeader, "signed header "+h+" is not allowed")
		}
	}
	// 6. server ID.
	sid := tok.Header.Values(ServerIDHeader)
	switch {
	case len(sid) == 0:
		return nil, unauthenticated(ReasonServerIDMissing, "the signed request lacks the "+ServerIDHeader+" header")
	case len(sid) != 1 || !constantTimeEqual(sid[0], v.serverID):
		return nil, unauthenticated(ReasonServerIDMismatch, ServerIDHeader+" does not name this control plane")
	case !a.signed(ServerIDHeader):
		return nil, unauthenticated(ReasonServerIDNotSigned, ServerIDHeader+" is not covered by the signature")
	}
	// 7. freshness.
	date, err := time.Parse(amzTimeFormat, tok.Header.Get("X-Amz-Date"))
	if err != nil || date.Format("20060102") != a.date {
		return nil, unauthenticated(ReasonExpired, "X-Amz-Date is missing, malformed or does not match the credential scope")
	}
	if d := v.now().Sub(date); d > MaxRequestAge || d < -MaxRequestAge {
		return nil, unauthenticated(ReasonExpired, "the signed request is older (or newer) than 15 minutes; sign a new one")
	}
	sum := sha256.Sum256([]byte(a.signature))
	return &signedLogin{tok: tok, auth: a, host: strings.ToLower(u.Host), date: date, sigKey: hex.EncodeToString(sum[:])}, nil
}

func canonical(h string) string {
	// http.CanonicalHeaderKey without importing net/http here.
	b := []byte(h)
	up := true
	for i, c := range b {
		if up && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		} else if !up && c >= 'A' && c <= 'Z' {
			b[i] = c - 'A' + 'a'
		}
		up = c == '-'
	}
	return string(b)
}

// validBody accepts exactly "Action=GetCallerIdentity&Version=2011-06-15"
// in either order, nothing else.
func validBody(b []byte) bool {
	parts := strings.Split(string(b), "&")
	if len(parts) != 2 {
		return false
	}
	got := map[string]string{}
	for _, p := range parts {
		k, val, ok := strings.Cut(p, "=")
		if !ok {
			return false
		}
		k, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(val)
		if err1 != nil || err2 != nil {
			return false
		}
		if _, dup := got[k]; dup {
			return false
		}
		got[k] = val
	}
	return got["Action"] == "GetCallerIdentity" && got["Version"] == "2011-06-15"
}

// stsHostAllowed reports whether host is the SDK-resolved STS endpoint of
// region (standard or FIPS). Results are cached per region.
func (v *Verifier) stsHostAllowed(ctx context.Context, region, host string) (bool, error) {
	hosts, err := v.stsHosts(ctx, region)
	if err != nil {
		return false, err
	}
	for _, h := range hosts {
		if strings.EqualFold(h, host) {
			return true, nil
		}
	}
	return false, nil
}

func (v *Verifier) stsHosts(ctx context.Context, region string) ([]string, error) {
	if h, ok := v.hostCache.Load(region); ok {
		return h.([]string), nil
	}
	r := sts.NewDefaultEndpointResolverV2()
	var hosts []string
	for _, fips := range []bool{false, true} {
		ep, err := r.ResolveEndpoint(ctx, sts.EndpointParameters{Region: aws.String(region), UseFIPS: aws.Bool(fips), UseDualStack: aws.Bool(false), UseGlobalEndpoint: aws.Bool(false)})
		if err != nil {
			return nil, err
		}
		if ep.URI.Scheme == "https" && (ep.URI.Path == "" || ep.URI.Path == "/") {
			hosts = append(hosts, ep.URI.Host)
		}
	}
	// Regions come from callers: cache a bounded number of them.
	if v.hostCacheSize.Add(1) <= maxCachedRegions {
		v.hostCache.Store(region, hosts)
	}
	return hosts, nil
}
