// Package fakeiam is a fake of the AWS IAM query API for ecsmesh's tests and
// local run: GetRole, with tags in the real
// <Tags><member><Key/><Value/></member></Tags> shape and the real error
// shapes (NoSuchEntity, SignatureDoesNotMatch, ExpiredToken, Throttling).
// Requests must be SigV4-signed (service "iam") with credentials the shared
// sigv4check.Verifier issued; GetRole answers from the caller's account.
package fakeiam

import (
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/ecsmesh/ecsmesh/internal/test/awsfault"
	"github.com/ecsmesh/ecsmesh/internal/test/sigv4check"
)

// Namespace is the IAM XML namespace.
const Namespace = "https://iam.amazonaws.com/doc/2010-05-08/"

const maxBody = 64 << 10

// Role is an IAM role held by the fake.
type Role struct {
	Account    string
	Name       string
	Path       string
	RoleID     string
	ARN        string
	Tags       map[string]string
	CreateDate time.Time
	// Trusted are the other accounts whose principals may assume the role
	// (its trust policy); principals of the role's own account always may.
	Trusted []string
}

type roleKey struct{ account, name string }

// Fake is the IAM fake; it is an http.Handler. Safe for concurrent use.
type Fake struct {
	verifier *sigv4check.Verifier
	faults   awsfault.Injector

	mu    sync.Mutex
	roles map[roleKey]Role
	calls int
}

// New returns an IAM fake verifying signatures with v.
func New(v *sigv4check.Verifier) *Fake {
	return &Fake{verifier: v, roles: map[roleKey]Role{}}
}

// Faults returns the fault injector of the fake.
func (f *Fake) Faults() *awsfault.Injector { return &f.faults }

// PutRole creates the role, or re-creates it (new RoleId, as AWS does when
// a role is deleted and created again) when it exists, with tags.
func (f *Fake) PutRole(account, name string, tags map[string]string) Role {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := Role{
		Account: account, Name: name, Path: "/",
		RoleID:     "AROA" + randomID(17),
		ARN:        fmt.Sprintf("arn:aws:iam::%s:role/%s", account, name),
		Tags:       copyTags(tags),
		CreateDate: f.verifier.Now().UTC().Truncate(time.Second),
	}
	f.roles[roleKey{account, name}] = r
	return r
}

// SetTags replaces the tags of an existing role (RoleId unchanged).
func (f *Fake) SetTags(account, name string, tags map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.roles[roleKey{account, name}]
	if !ok {
		return fmt.Errorf("iam: no role %s in %s", name, account)
	}
	r.Tags = copyTags(tags)
	f.roles[roleKey{account, name}] = r
	return nil
}

// Trust lets principals of the given accounts assume the role (its trust
// policy's Principal).
func (f *Fake) Trust(account, name string, principals ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.roles[roleKey{account, name}]
	if !ok {
		return fmt.Errorf("iam: no role %s in %s", name, account)
	}
	r.Trusted = append(append([]string(nil), r.Trusted...), principals...)
	f.roles[roleKey{account, name}] = r
	return nil
}

// DeleteRole removes a role.
func (f *Fake) DeleteRole(account, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.roles, roleKey{account, name})
}

// Role returns a role.
func (f *Fake) Role(account, name string) (Role, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.roles[roleKey{account, name}]
	return r, ok
}

// GetRoleCalls returns how many GetRole requests the fake answered
// successfully.
func (f *Fake) GetRoleCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := sigv4check.RequestID()
	if f.faults.Serve(w, r, awsfault.XML, Namespace) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody || r.Method != http.MethodPost {
		sigv4check.WriteXML(w, sigv4check.Errorf(http.StatusBadRequest, "MalformedInput", "bad request"), Namespace, rid)
		return
	}
	cred, err := f.verifier.Verify(r, body, "iam")
	if err != nil {
		sigv4check.WriteXML(w, err, Namespace, rid)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		sigv4check.WriteXML(w, sigv4check.Errorf(http.StatusBadRequest, "MalformedQueryString", "cannot parse body"), Namespace, rid)
		return
	}
	switch form.Get("Action") {
	case "GetRole":
		f.getRole(w, cred, form.Get("RoleName"), rid)
	default:
		sigv4check.WriteXML(w, sigv4check.Errorf(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version %s", form.Get("Action"), form.Get("Version")), Namespace, rid)
	}
}

type tag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type roleXML struct {
	Path                     string `xml:"Path"`
	AssumeRolePolicyDocument string `xml:"AssumeRolePolicyDocument"`
	MaxSessionDuration       int    `xml:"MaxSessionDuration"`
	RoleID                   string `xml:"RoleId"`
	RoleName                 string `xml:"RoleName"`
	Arn                      string `xml:"Arn"`
	CreateDate               string `xml:"CreateDate"`
	Tags                     []tag  `xml:"Tags>member,omitempty"`
}

type getRoleResponse struct {
	XMLName   xml.Name `xml:"GetRoleResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Role      roleXML  `xml:"GetRoleResult>Role"`
	RequestID string   `xml:"ResponseMetadata>RequestId"`
}

func (f *Fake) getRole(w http.ResponseWriter, caller sigv4check.Credential, name, rid string) {
	role, ok := f.Role(caller.Principal.Account, name)
	if !ok {
		sigv4check.WriteXML(w, sigv4check.Errorf(http.StatusNotFound, "NoSuchEntity", "The role with name %s cannot be found.", name), Namespace, rid)
		return
	}
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	out := getRoleResponse{Xmlns: Namespace, RequestID: rid, Role: roleXML{
		Path: role.Path, AssumeRolePolicyDocument: "%7B%22Version%22%3A%222012-10-17%22%7D", MaxSessionDuration: 3600,
		RoleID: role.RoleID, RoleName: role.Name, Arn: role.ARN, CreateDate: role.CreateDate.Format(time.RFC3339),
	}}
	keys := make([]string, 0, len(role.Tags))
	for k := range role.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out.Role.Tags = append(out.Role.Tags, tag{Key: k, Value: role.Tags[k]})
	}
	b, _ := xml.Marshal(out)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", rid)
	_, _ = w.Write(append([]byte(xml.Header), b...))
}

func copyTags(t map[string]string) map[string]string {
	out := make(map[string]string, len(t))
	for k, v := range t {
		out[k] = v
	}
	return out
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}
