package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/controlplane/cp"
	"github.com/ecsmesh/ecsmesh/internal/dev/devcloud"
)

// The identities of the scenario: devcloud tags its task roles as Kong
// Mesh does (kuma.io/type dataplane, kuma.io/mesh default,
// kuma.io/service and kuma.io/workload = the service).
const (
	victimName   = "redis-1"
	victimTask   = "redis-task-1"
	victimID     = "spiffe://default.mesh.local/workload/redis"
	attackerName = "web-1"
	attackerTask = "web-task-1"
	attackerID   = "spiffe://default.mesh.local/workload/web"
	// attackerRounds is how often the attacker opens and closes a
	// legitimate stream on the other replica.
	attackerRounds = 3
)

// takeover is the scenario's state: the two replicas, the local AWS and
// what was seen.
type takeover struct {
	t        *testing.T
	a, b     *cpProcess
	apiA     *sidecarAPI
	apiB     *sidecarAPI
	logins   taskLogins
	caPath   string
	reasons  []string // every refusal seen, for the log
	attacker []*adsStream
}

// refused checks an answer of api against the wanted "status reason"
// pairs (any of them), logs the reason and returns the problem. When the
// attack got a dataplane token instead, the attacker uses it at once: it
// opens ADS on api's replica as the victim's node, and what that stream
// is sent is checked with the other attacker streams.
func (s *takeover) refused(api *sidecarAPI, step string, status int, body []byte, wants ...string) problemBody {
	s.t.Helper()
	var won struct {
		Token string `json:"token"`
	}
	if status == http.StatusOK && json.Unmarshal(body, &won) == nil && won.Token != "" {
		s.t.Errorf("%s: the attack succeeded (200 with a dataplane token)", step)
		s.exploit(api.proc, "stream with the token of "+step, won.Token)
		return problemBody{}
	}
	p, err := decodeProblem(body)
	if err != nil {
		s.t.Errorf("%s: %d %v", step, status, err)
		return p
	}
	s.reasons = append(s.reasons, fmt.Sprintf("%-62s → %d %s", step, status, p.Reason))
	if !slices.Contains(wants, fmt.Sprintf("%d %s", status, p.Reason)) {
		s.t.Errorf("%s: got %d %s (%s), want one of %q", step, status, p.Reason, p.Details, wants)
	}
	return p
}

// bootstrap runs a legitimate /bootstrap and returns its answer.
func (s *takeover) bootstrap(api *sidecarAPI, name, service, address, task, wantID string) dpapi.BootstrapResponse {
	s.t.Helper()
	status, body := api.post(s.t, "/bootstrap", bootstrapBody(s.t, name, taskDataplane(name, service, address), s.logins.token(s.t, task), s.caPath), "")
	if status != http.StatusOK {
		s.t.Fatalf("bootstrap of %s on %s: %d %s", name, api.name, status, body)
	}
	var resp dpapi.BootstrapResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		s.t.Fatalf("bootstrap of %s: %v", name, err)
	}
	if resp.SPIFFEID != wantID || resp.Token == "" {
		s.t.Fatalf("bootstrap of %s: SPIFFE ID %q (want %q), token set %v", name, resp.SPIFFEID, wantID, resp.Token != "")
	}
	return resp
}

// exploit opens ADS as the victim's node with a token an attack won,
// and waits until it is sent an SVID or ends.
func (s *takeover) exploit(p *cpProcess, label, tok string) {
	s.t.Helper()
	st := openADS(s.t, label, p.xds, loadRoots(s.t, s.caPath), tok, "default."+victimName)
	s.attacker = append(s.attacker, st)
	waitFor(s.t, settleDeadline, label+" sent an SVID or ended", func() (bool, string) {
		done, _ := st.ended()
		return done || len(st.x509SVIDs()) > 0, "waiting"
	})
	s.reasons = append(s.reasons, fmt.Sprintf("%-62s → sent %d X.509 SVIDs, ended: %s", label, len(st.x509SVIDs()), st.code()))
}

// served opens a stream and waits until it holds its X.509 SVID. A
// stream the replica refuses because its watch has not yet seen the
// Dataplane (NotFound, Unavailable) is opened again, as Envoy retries;
// any other end is an error of the test, and the ended stream is
// returned.
func (s *takeover) served(p *cpProcess, label, tok, node string) *adsStream {
	s.t.Helper()
	roots := loadRoots(s.t, s.caPath)
	var st *adsStream
	attempts := 0
	waitFor(s.t, settleDeadline, label+" served its X.509 SVID", func() (bool, string) {
		if st == nil {
			attempts++
			st = openADS(s.t, label, p.xds, roots, tok, node)
		}
		if len(st.x509SVIDs()) > 0 {
			return true, ""
		}
		if done, err := st.ended(); done {
			if c := st.code(); c != "NotFound" && c != "Unavailable" {
				s.t.Errorf("%s: refused: %v", label, err)
				return true, ""
			}
			st = nil
			return false, fmt.Sprintf("attempt %d ended: %v", attempts, err)
		}
		return false, fmt.Sprintf("attempt %d: no SVID yet", attempts)
	})
	return st
}

// refusedStream opens a stream that must be refused PermissionDenied
// without being sent anything.
func (s *takeover) refusedStream(p *cpProcess, label, tok, node string) {
	s.t.Helper()
	st := openADS(s.t, label, p.xds, loadRoots(s.t, s.caPath), tok, node)
	waitFor(s.t, settleDeadline, label+" ended by the CP", func() (bool, string) {
		done, err := st.ended()
		return done, fmt.Sprint(err)
	})
	_, err := st.ended()
	s.reasons = append(s.reasons, fmt.Sprintf("%-62s → %s (%v)", label, st.code(), err))
	if st.code() != "PermissionDenied" {
		s.t.Errorf("%s: ended %s (%v), want PermissionDenied", label, st.code(), err)
	}
	if raw, _, _ := st.snapshot(); len(raw) > 0 {
		s.t.Errorf("%s: refused, yet sent %d resources", label, len(raw))
	}
	s.attacker = append(s.attacker, st)
}

// TestTakeoverTwoReplicas is the acceptance scenario of identity binding:
// two CP processes on one PostgreSQL schema, IAM login against the local
// AWS. The victim (task role redis) bootstraps redis-1 on cp-a and holds
// its ADS stream there; the attacker (task role web, a legitimate member
// of the mesh) tries every takeover path on cp-b and on cp-a: /bootstrap
// of the victim's name with its own or the victim's service, login for
// the victim's name (no oracle), case-variant JSON keys, an ADS stream
// for the victim's node with its own token, health sync of the victim's
// Dataplane, and legitimate streams opened and closed on the other
// replica until the disconnect grace has passed. The victim's stream must
// stay up and only ever carry its own SVID, no attacker stream may be
// sent the victim's SVID, key or JWT-SVID, and the stored redis-1 must be
// unchanged.
func TestTakeoverTwoReplicas(t *testing.T) {
	pgEnv, dsn, schema := postgresEnv(t)
	cloudLogs := &lockedBuffer{}
	cloud, err := devcloud.Start(t.Context(), devcloud.Options{
		Logger:   slog.New(slog.NewTextHandler(cloudLogs, nil)),
		Services: devcloud.DemoServices,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cloud.Close)
	serverID := "ecsmesh-e2e-takeover"
	env := append(cloud.CPEnv(), pgEnv...)
	env = append(env, "ECSMESH_AWSIAM_SERVER_ID="+serverID)
	s := &takeover{t: t, logins: taskLogins{cloud: cloud, serverID: serverID}}
	s.a, s.b = startCP(t, "cp-a", env), startCP(t, "cp-b", env)
	s.a.apply(t, "type: Mesh\nname: default\n")
	s.caPath = filepath.Join(s.a.dataDir, cp.CACertFile)
	roots := loadRoots(t, s.caPath)
	s.apiA, s.apiB = newSidecarAPI(s.a, roots), newSidecarAPI(s.b, roots)
	redisRole, ok1 := cloud.Fake().IAM.Role(devcloud.DefaultAccount, cloud.RoleName("redis"))
	webRole, ok2 := cloud.Fake().IAM.Role(devcloud.DefaultAccount, cloud.RoleName("web"))
	if !ok1 || !ok2 {
		t.Fatal("the local AWS lacks the redis or web task role")
	}
	conn := pgConnect(t, dsn)
	defer conn.Close(t.Context())

	// 1. The victim bootstraps redis-1 on cp-a and holds its stream there.
	vb := s.bootstrap(s.apiA, victimName, "redis", "127.0.0.3", victimTask, victimID)
	victim := s.served(s.a, "victim redis-1 on cp-a", vb.Token, "default."+victimName)
	if len(victim.x509SVIDs()) == 0 {
		t.FailNow()
	}
	if got := victim.x509SVIDs()[0].spiffeID; got != victimID {
		t.Fatalf("the victim's X.509 SVID is %q, want %q", got, victimID)
	}
	before, found := dataplaneRow(t, conn, schema, victimName)
	if !found {
		t.Fatal("redis-1 is not stored after its bootstrap")
	}
	if o := ownerOf(t, before); o == nil || o.RoleID != redisRole.RoleID || o.RoleARN != redisRole.ARN || o.SPIFFEID != victimID {
		t.Fatalf("redis-1 owner = %+v, want role %s (%s) with %s", o, redisRole.ARN, redisRole.RoleID, victimID)
	}
	t.Logf("victim up on cp-a: redis-1 version %d, owner %s", before.Version, redisRole.ARN)

	// 2a. /bootstrap of the victim's name as a web Dataplane.
	for _, api := range []*sidecarAPI{s.apiB, s.apiA} {
		status, body := api.post(t, "/bootstrap", bootstrapBody(t, victimName, taskDataplane(victimName, "web", "127.0.0.2"), s.logins.token(t, attackerTask), s.caPath), "")
		s.refused(api, "(a) /bootstrap redis-1 as web on "+api.name, status, body, "409 dataplane_owned")
	}
	// 2b. /bootstrap of the victim's name, and of a free name, as redis
	// (a service the attacker's role does not carry).
	for _, api := range []*sidecarAPI{s.apiB, s.apiA} {
		status, body := api.post(t, "/bootstrap", bootstrapBody(t, victimName, taskDataplane(victimName, "redis", "127.0.0.2"), s.logins.token(t, attackerTask), s.caPath), "")
		s.refused(api, "(b) /bootstrap redis-1 as redis on "+api.name, status, body, "409 dataplane_owned", "403 role_service_mismatch")
	}
	status, body := s.apiB.post(t, "/bootstrap", bootstrapBody(t, "redis-2", taskDataplane("redis-2", "redis", "127.0.0.2"), s.logins.token(t, attackerTask), s.caPath), "")
	s.refused(s.apiB, "(b) /bootstrap redis-2 (free name) as redis on cp-b", status, body, "403 role_service_mismatch")
	// 2c. Login for the victim's name: 409, worded as for a name that
	// does not exist (no oracle).
	for _, api := range []*sidecarAPI{s.apiB, s.apiA} {
		status, body := api.post(t, "/v1/auth/aws-iam/login", loginBody(t, victimName, s.logins.token(t, attackerTask)), "")
		pVictim := s.refused(api, "(c) login redis-1 on "+api.name, status, body, "409 dataplane_owned")
		status, body = api.post(t, "/v1/auth/aws-iam/login", loginBody(t, "nobody-1", s.logins.token(t, attackerTask)), "")
		pNobody := s.refused(api, "(c) login nobody-1 (no such name) on "+api.name, status, body, "409 dataplane_owned")
		pNobody.Details = strings.ReplaceAll(pNobody.Details, "nobody-1", victimName)
		if a, b := mustJSON(t, pVictim), mustJSON(t, pNobody); pVictim.Reason != "" && !bytes.Equal(a, b) {
			t.Errorf("(c) on %s: the answer for the victim's name differs from the one for a free name:\n%s\n%s", api.name, a, b)
		}
	}
	// 2d. Case-variant keys: "name" checked, "NAME" used.
	status, body = s.apiB.post(t, "/bootstrap", fmt.Sprintf(`{"mesh":"default","name":%q,"NAME":%q,"dataplaneResource":%s,"loginToken":%q}`,
		attackerName, victimName, mustJSON(t, taskDataplane(victimName, "web", "127.0.0.2")), s.logins.token(t, attackerTask)), "")
	s.refused(s.apiB, `(d) /bootstrap {"name":"web-1","NAME":"redis-1"} on cp-b`, status, body, "400 invalid_bootstrap_request")
	status, body = s.apiB.post(t, "/v1/auth/aws-iam/login", fmt.Sprintf(`{"mesh":"default","name":%q,"NAME":%q,"proxyType":"dataplane","loginToken":%q}`,
		attackerName, victimName, s.logins.token(t, attackerTask)), "")
	s.refused(s.apiB, `(d) login {"name":"web-1","NAME":"redis-1"} on cp-b`, status, body, "400 invalid_login_request")

	// 2e. The attacker's own web-1, then its token for the victim's node.
	ab := s.bootstrap(s.apiB, attackerName, "web", "127.0.0.2", attackerTask, attackerID)
	s.refusedStream(s.b, "(e) ADS default.redis-1 with web-1's token on cp-b", ab.Token, "default."+victimName)
	s.refusedStream(s.a, "(e) ADS default.redis-1 with web-1's token on cp-a", ab.Token, "default."+victimName)
	status, body = s.apiB.post(t, "/v1/health-sync", `{"mesh":"default","name":"redis-1","ready":false}`, ab.Token)
	s.refused(s.apiB, "(e) health sync of redis-1 with web-1's token on cp-b", status, body, "403 dataplane_token_mismatch")

	// 2f. A stream of redis-1 opened and closed on cp-b while the
	// victim's is live on cp-a: what the attacker did with a stolen
	// redis-1 token before streams were bound (here the victim's own
	// token: no attacker token opens this node any more). cp-b's
	// disconnect must not count as redis-1 gone. Then legitimate web-1
	// streams opened and closed on cp-b, and the disconnect grace: cp-b
	// removes web-1 (its timer, armed after redis-1's, ran) and must
	// leave redis-1 alone.
	second := s.served(s.b, "(f) victim's own second stream on cp-b", vb.Token, "default."+victimName)
	second.close()
	for i := range attackerRounds {
		st := s.served(s.b, fmt.Sprintf("(f) attacker web-1 on cp-b, round %d", i+1), ab.Token, "default."+attackerName)
		s.attacker = append(s.attacker, st)
		st.close()
		s.refusedStream(s.b, fmt.Sprintf("(f) ADS default.redis-1 with web-1's token on cp-b, round %d", i+1), ab.Token, "default."+victimName)
	}
	waitFor(t, settleDeadline, "cp-b removing web-1 after the disconnect grace", func() (bool, string) {
		_, found := dataplaneRow(t, conn, schema, attackerName)
		return !found, "web-1 still stored"
	})
	t.Logf("web-1 removed by the disconnect grace after its last stream on cp-b closed")

	// The victim's stream is still served: an operator change reaches it.
	acks, _, _ := victim.client.Counts()
	s.b.apply(t, dataplaneYAML("cache-1", "cache", "10.0.0.9"))
	waitFor(t, settleDeadline, "the victim receiving the operator's change", func() (bool, string) {
		if done, err := victim.ended(); done {
			return true, fmt.Sprintf("ended: %v", err)
		}
		n, _, _ := victim.client.Counts()
		return n > acks, fmt.Sprintf("%d responses, %d before", n, acks)
	})

	// 3. What must hold.
	if done, err := victim.ended(); done {
		t.Errorf("the victim's stream on cp-a ended (%s): %v", victim.code(), err)
	}
	checkOnlyOwn(t, victim, victimID, nil)
	checkOnlyOwn(t, second, victimID, nil)
	_, victimSVIDs, _ := victim.snapshot()
	secrets := secretsOf(victimSVIDs)
	if len(secrets) == 0 {
		t.Fatal("no secret of the victim recorded: the check below would be empty")
	}
	for _, st := range s.attacker {
		checkOnlyOwn(t, st, attackerID, secrets)
	}
	after, found := dataplaneRow(t, conn, schema, victimName)
	switch {
	case !found:
		t.Errorf("redis-1 is no longer stored")
	case after.Version != before.Version || after.CreatedAt != before.CreatedAt || after.ModifiedAt != before.ModifiedAt ||
		after.ExpiresAt != before.ExpiresAt || !bytes.Equal(after.Spec, before.Spec):
		t.Errorf("redis-1 changed in the store:\nbefore v%d %d %s\nafter  v%d %d %s", before.Version, before.ModifiedAt, before.Spec, after.Version, after.ModifiedAt, after.Spec)
	}
	for _, p := range []*cpProcess{s.a, s.b} {
		code, body, err := httpDo(http.MethodGet, "http://"+p.admin+"/meshes/default/dataplanes/"+victimName, "")
		if err != nil || code != http.StatusOK {
			t.Errorf("GET /meshes/default/dataplanes/redis-1 on %s: %d %s %v", p.name, code, body, err)
		}
	}
	acks, nacks, _ := victim.client.Counts()
	kinds := map[string]int{}
	for _, r := range victimSVIDs {
		kinds[r.kind]++
	}
	t.Logf("victim: %d responses ACKed, %d NACKed, identities received %v (all %s); %d attacker streams (role %s) checked against %d secrets of the victim",
		acks, nacks, kinds, victimID, len(s.attacker), webRole.ARN, len(secrets))
	t.Logf("refusals seen:\n  %s", strings.Join(s.reasons, "\n  "))
	if t.Failed() {
		t.Logf("---- local AWS log ----\n%s", cloudLogs.String())
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
