// Package sts is a fake of the AWS STS query API for ecsmesh's tests and
// local run. It issues credentials for assumed-role sessions (so the real
// SDK signs with them) and answers GetCallerIdentity for requests signed
// with them, verifying SigV4 (service "sts") and answering the real XML
// error shapes (SignatureDoesNotMatch, ExpiredToken, InvalidClientTokenId,
// Throttling).
package sts

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/awsfake/fault"
	"github.com/ecsmesh/ecsmesh/controlplane/awsfake/iam"
	"github.com/ecsmesh/ecsmesh/controlplane/awsfake/sigv4"
)

// Namespace is the STS XML namespace.
const Namespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// DefaultSessionTTL is the lifetime of credentials AssumeRole issues.
const DefaultSessionTTL = time.Hour

const maxBody = 64 << 10

// Roles finds roles; *iam.Fake implements it.
type Roles interface {
	Role(account, name string) (iam.Role, bool)
}

// Fake is the STS fake; it is an http.Handler. Safe for concurrent use.
type Fake struct {
	verifier *sigv4.Verifier
	roles    Roles
	faults   fault.Injector

	mu    sync.Mutex
	calls int
}

// New returns an STS fake verifying with v and assuming roles from roles.
func New(v *sigv4.Verifier, roles Roles) *Fake {
	return &Fake{verifier: v, roles: roles}
}

// Faults returns the fault injector of the fake.
func (f *Fake) Faults() *fault.Injector { return &f.faults }

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
func (f *Fake) AssumeRole(account, roleName, session string, ttl time.Duration) (sigv4.Credential, error) {
	r, ok := f.roles.Role(account, roleName)
	if !ok {
		return sigv4.Credential{}, fmt.Errorf("sts: no role %s in account %s", roleName, account)
	}
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	return f.verifier.Issue(sigv4.Principal{
		Account: account,
		ARN:     fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", account, roleName, session),
		UserID:  r.RoleID + ":" + session,
	}, ttl), nil
}

// IssueUser issues long-term credentials of an IAM user (not a role).
func (f *Fake) IssueUser(account, userName string) sigv4.Credential {
	return f.verifier.Issue(sigv4.Principal{
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
	rid := sigv4.RequestID()
	if f.faults.Serve(w, r, fault.XML, Namespace) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		sigv4.WriteXML(w, sigv4.Errorf(http.StatusBadRequest, "MalformedInput", "bad request body"), Namespace, rid)
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		sigv4.WriteXML(w, sigv4.Errorf(http.StatusMethodNotAllowed, "InvalidAction", "method not allowed"), Namespace, rid)
		return
	}
	cred, err := f.verifier.Verify(r, body, "sts")
	if err != nil {
		sigv4.WriteXML(w, err, Namespace, rid)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		sigv4.WriteXML(w, sigv4.Errorf(http.StatusBadRequest, "MalformedQueryString", "cannot parse body"), Namespace, rid)
		return
	}
	for k, v := range r.URL.Query() {
		form[k] = append(form[k], v...)
	}
	if form.Get("Action") != "GetCallerIdentity" {
		sigv4.WriteXML(w, sigv4.Errorf(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version %s", form.Get("Action"), form.Get("Version")), Namespace, rid)
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
