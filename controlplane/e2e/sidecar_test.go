package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/jackc/pgx/v5"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/bootstrap/awslogin"
	"github.com/ecsmesh/ecsmesh/internal/dev/devcloud"
)

// sidecarAPI is a CP's sidecar API as an agent reaches it: HTTPS,
// verified with the CP's CA.
type sidecarAPI struct {
	proc   *cpProcess
	name   string
	base   string
	client *http.Client
}

func newSidecarAPI(p *cpProcess, roots *x509.CertPool) *sidecarAPI {
	return &sidecarAPI{proc: p, name: p.name, base: "https://" + p.api, client: &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}},
	}}
}

// post sends body (JSON) to path, with bearer as the dataplane token when
// set, and returns the status and body.
func (a *sidecarAPI) post(t *testing.T, path, body, bearer string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, a.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatalf("POST %s on %s: %v", path, a.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s on %s: reading the answer: %v", path, a.name, err)
	}
	return resp.StatusCode, b
}

// problemBody is the API's problem shape.
type problemBody struct {
	Title   string            `json:"title"`
	Details string            `json:"details"`
	Reason  string            `json:"reason"`
	Causes  []json.RawMessage `json:"causes"`
}

func decodeProblem(b []byte) (problemBody, error) {
	var p problemBody
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("not a problem body: %w: %s", err, b)
	}
	if p.Reason == "" || p.Title == "" {
		return p, fmt.Errorf("problem body without reason or title: %s", b)
	}
	return p, nil
}

// taskLogins signs logins with the credentials of ECS tasks of the local
// AWS, as the agent does (bootstrap/awslogin, the SDK's ECS container
// credentials provider).
type taskLogins struct {
	cloud    *devcloud.Cloud
	serverID string
}

// token signs a fresh login for the task. Every call fetches the task's
// credentials anew (a new STS session each), so no two logins share a
// signature: each one is single use.
func (l taskLogins) token(t *testing.T, taskID string) string {
	t.Helper()
	cfg := aws.Config{
		Region:       devcloud.DefaultRegion,
		Credentials:  endpointcreds.New(l.cloud.URL() + devcloud.CredentialsPrefix + taskID),
		BaseEndpoint: aws.String(l.cloud.URL()),
	}
	tok, err := awslogin.NewLoginToken(t.Context(), cfg, l.serverID)
	if err != nil {
		t.Fatalf("signing a login for task %s: %v", taskID, err)
	}
	return tok
}

// taskDataplane is the Dataplane an agent renders for a task of service
// in the local AWS's cluster.
func taskDataplane(name, service, address string) string {
	return fmt.Sprintf(`type: Dataplane
mesh: default
name: %s
labels: {kuma.io/workload: %s, ecsmesh.io/ecs-cluster: %s}
networking:
  address: %s
  inbound:
  - port: 15000
    servicePort: 8080
    tags: {kuma.io/service: %s, kuma.io/protocol: http}
`, name, service, devcloud.DefaultCluster, address, service)
}

// bootstrapBody is an agent's POST /bootstrap body.
func bootstrapBody(t *testing.T, name, dataplane, loginToken, caPath string) string {
	t.Helper()
	b, err := json.Marshal(dpapi.BootstrapRequest{
		Mesh: "default", Name: name, DataplaneResource: dataplane, LoginToken: loginToken,
		Host: "127.0.0.1", CACertPath: caPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// loginBody is a POST /v1/auth/aws-iam/login body.
func loginBody(t *testing.T, name, loginToken string) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{"mesh": "default", "name": name, "proxyType": "dataplane", "loginToken": loginToken})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func loadRoots(t *testing.T, caPath string) *x509.CertPool {
	t.Helper()
	pemBytes, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatalf("reading the CP's CA (%s): %v", caPath, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("%s holds no PEM certificate", caPath)
	}
	return roots
}

// storedRow is a record as PostgreSQL holds it.
type storedRow struct {
	Version, CreatedAt, ModifiedAt, ExpiresAt int64
	Spec                                      []byte
}

// dataplaneRow reads the Dataplane default/name straight from the
// records table of schema; found is false when there is none.
func dataplaneRow(t *testing.T, conn *pgx.Conn, schema, name string) (row storedRow, found bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := conn.QueryRow(ctx, `SELECT version, created_at, modified_at, expires_at, spec FROM `+
		pgx.Identifier{schema, "records"}.Sanitize()+` WHERE kind = $1 AND mesh = 'default' AND name = $2`,
		resource.KindDataplane, name).Scan(&row.Version, &row.CreatedAt, &row.ModifiedAt, &row.ExpiresAt, &row.Spec)
	if errors.Is(err, pgx.ErrNoRows) {
		return row, false
	}
	if err != nil {
		t.Fatalf("reading Dataplane %s from PostgreSQL: %v", name, err)
	}
	return row, true
}

// ownerOf decodes the owner of a stored Dataplane.
func ownerOf(t *testing.T, row storedRow) *resource.Owner {
	t.Helper()
	obj, err := resource.Unmarshal(resource.KindDataplane, row.Spec)
	if err != nil {
		t.Fatalf("decoding a stored Dataplane: %v", err)
	}
	return obj.(*resource.Dataplane).Owner
}
