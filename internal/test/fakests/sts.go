// Package fakests is a fake of the AWS STS query API for ecsmesh's tests and
// local run. It issues credentials for assumed-role sessions (so the real
// SDK signs with them) and answers GetCallerIdentity for requests signed
// with them, verifying SigV4 (service "sts") and answering the real XML
// error shapes (SignatureDoesNotMatch, ExpiredToken, InvalidClientTokenId,
// Throttling).
package fakests

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecsmesh/ecsmesh/internal/test/awsfault"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeiam"
	"github.com/ecsmesh/ecsmesh/internal/test/sigv4check"
)

// Namespace is the STS XML namespace.
const Namespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// DefaultSessionTTL is the lifetime of credentials AssumeRole issues.
const DefaultSessionTTL = time.Hour

const maxBody = 64 << 10

// Roles finds roles; *fakeiam.Fake implements it.
type Roles interface {
	Role(account, name string) (fakeiam.Role, bool)
}

// Fake is the STS fake; it is an http.Handler. Safe for concurrent use.
type Fake struct {
	verifier *sigv4check.Verifier
	roles    Roles
	faults   awsfault.Injector

	mu    sync.Mutex
	calls int
}

// New returns an STS fake verifying with v and assuming roles from roles.
func New(v *sigv4check.Verifier, roles Roles) *Fake {
	return &Fake{verifier: v, roles: roles}
}

// Faults returns the fault injector of the fake.
func (f *Fake) Faults() *awsfault.Injector { return &f.faults }

// Calls returns how many GetCallerIdentity requests succeeded.
func (f *Fake) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// AssumeRole issues temporary credentials for a session of the role, as ECS
// does for a task role (the session name is then the task ID). The
// caller's UserId is "<RoleId>:<session>" with the role's RoleId now, so a
// role re-created later no longer matches it.
func (f *Fake) AssumeRole(account, roleName, session string, ttl time.Duration) (sigv4check.Credential, error) {
	r, ok := f.roles.Role(account, roleName)
	if !ok {
		return sigv4check.Credential{}, fmt.Errorf("sts: no role %s in account %s", roleName, account)
	}
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	return f.verifier.Issue(sigv4check.Principal{
		Account: account,
		ARN:     fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", account, roleName, session),
		UserID:  r.RoleID + ":" + session,
	}, ttl), nil
}

// IssueUser issues long-term credentials of an IAM user (not a role).
func (f *Fake) IssueUser(account, userName string) sigv4check.Credential {
	return f.verifier.Issue(sigv4check.Principal{
		Account: account,
		ARN:     fmt.Sprintf("arn:aws:iam::%s:user/%s", account, userName),
		UserID:  "AIDA" + userName,
	}, 0)
}

type callerIdentity struct {
	XMLName   xml.Name `xml:"GetCallerIdentityResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Arn       string   `xml:"GetCallerIdentityResult>Arn"`
	UserID    string   `xml:"GetCallerIdentityResult>UserId"`
	Account   string   `xml:"GetCallerIdentityResult>Account"`
	RequestID string   `xml:"ResponseMetadata>RequestId"`
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := sigv4check.RequestID()
	if f.faults.Serve(w, r, awsfault.XML, Namespace) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		sigv4check.WriteXML(w, sigv4check.Errorf(http.StatusBadRequest, "MalformedInput", "bad request body"), Namespace, rid)
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		sigv4check.WriteXML(w, sigv4check.Errorf(http.StatusMethodNotAllowed, "InvalidAction", "method not allowed"), Namespace, rid)
		return
	}
	cred, err := f.verifier.Verify(r, body, "sts")
	if err != nil {
		sigv4check.WriteXML(w, err, Namespace, rid)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		sigv4check.WriteXML(w, sigv4check.Errorf(http.StatusBadRequest, "MalformedQueryString", "cannot parse body"), Namespace, rid)
		return
	}
	for k, v := range r.URL.Query() {
		form[k] = append(form[k], v...)
	}
	if form.Get("Action") == "AssumeRole" {
		f.assumeRoleAction(w, cred, form, rid)
		return
	}
	if form.Get("Action") != "GetCallerIdentity" {
		sigv4check.WriteXML(w, sigv4check.Errorf(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version %s", form.Get("Action"), form.Get("Version")), Namespace, rid)
		return
	}
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	b, _ := xml.Marshal(callerIdentity{Xmlns: Namespace, Arn: cred.Principal.ARN, UserID: cred.Principal.UserID, Account: cred.Principal.Account, RequestID: rid})
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", rid)
	_, _ = w.Write(b)
}

type assumeRoleResponse struct {
	XMLName         xml.Name `xml:"AssumeRoleResponse"`
	Xmlns           string   `xml:"xmlns,attr"`
	AccessKeyID     string   `xml:"AssumeRoleResult>Credentials>AccessKeyId"`
	SecretAccessKey string   `xml:"AssumeRoleResult>Credentials>SecretAccessKey"`
	SessionToken    string   `xml:"AssumeRoleResult>Credentials>SessionToken"`
	Expiration      string   `xml:"AssumeRoleResult>Credentials>Expiration"`
	Arn             string   `xml:"AssumeRoleResult>AssumedRoleUser>Arn"`
	AssumedRoleID   string   `xml:"AssumeRoleResult>AssumedRoleUser>AssumedRoleId"`
	RequestID       string   `xml:"ResponseMetadata>RequestId"`
}

// assumeRoleAction is sts:AssumeRole on the wire: the caller may assume a
// role of its own account, or of another account whose role trusts it.
func (f *Fake) assumeRoleAction(w http.ResponseWriter, caller sigv4check.Credential, form url.Values, rid string) {
	arn, session := form.Get("RoleArn"), form.Get("RoleSessionName")
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") || session == "" {
		sigv4check.WriteXML(w, sigv4check.Errorf(http.StatusBadRequest, "ValidationError", "RoleArn and RoleSessionName are required"), Namespace, rid)
		return
	}
	account, name := parts[4], parts[5][strings.LastIndex(parts[5], "/")+1:]
	role, ok := f.roles.Role(account, name)
	trusted := ok && (caller.Principal.Account == account || slices.Contains(role.Trusted, caller.Principal.Account))
	if !trusted {
		sigv4check.WriteXML(w, sigv4check.Errorf(http.StatusForbidden, "AccessDenied",
			"User: %s is not authorized to perform: sts:AssumeRole on resource: %s", caller.Principal.ARN, arn), Namespace, rid)
		return
	}
	ttl := DefaultSessionTTL
	if d, err := strconv.Atoi(form.Get("DurationSeconds")); err == nil && d > 0 {
		ttl = time.Duration(d) * time.Second
	}
	cred, err := f.AssumeRole(account, name, session, ttl)
	if err != nil {
		sigv4check.WriteXML(w, sigv4check.Errorf(http.StatusForbidden, "AccessDenied", "%v", err), Namespace, rid)
		return
	}
	b, _ := xml.Marshal(assumeRoleResponse{
		Xmlns: Namespace, AccessKeyID: cred.AccessKeyID, SecretAccessKey: cred.SecretAccessKey, SessionToken: cred.SessionToken,
		Expiration: cred.Expires.UTC().Format(time.RFC3339), Arn: cred.Principal.ARN, AssumedRoleID: cred.Principal.UserID, RequestID: rid,
	})
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", rid)
	_, _ = w.Write(b)
}
