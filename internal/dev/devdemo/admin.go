package devdemo

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/bootstrap/awslogin"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
	"github.com/ecsmesh/ecsmesh/internal/dev/devcloud"
)

// adminClient calls the CP admin API.
type adminClient struct{ base string }

func (c *adminClient) do(ctx context.Context, method, path, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/yaml") // the admin API refuses other write types
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("devdemo: the admin API at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// Apply applies a YAML file of resources through the admin API.
func (d *Demo) Apply(ctx context.Context, yaml string) error {
	status, body, err := d.admin.do(ctx, http.MethodPost, "/apply", yaml)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("devdemo: apply: HTTP %d: %s", status, body)
	}
	return nil
}

// Dataplane is a stored Dataplane, as the admin API returns it.
type Dataplane struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	Net    struct {
		Address string `json:"address"`
		Inbound []struct {
			Port  int               `json:"port"`
			Tags  map[string]string `json:"tags"`
			State string            `json:"state"`
		} `json:"inbound"`
	} `json:"networking"`
}

// Dataplanes lists the dataplanes of mesh default by agent name: the
// service of an inbound, with its version tag if any (backend-v1).
func (d *Demo) Dataplanes(ctx context.Context) (map[string]Dataplane, error) {
	status, body, err := d.admin.do(ctx, http.MethodGet, "/meshes/default/dataplanes", "")
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("devdemo: listing dataplanes: HTTP %d", status)
	}
	var list struct {
		Items []Dataplane `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, err
	}
	out := map[string]Dataplane{}
	for _, dp := range list.Items {
		for _, in := range dp.Net.Inbound {
			out[devcloud.AgentName(in.Tags["kuma.io/service"], in.Tags["version"])] = dp
		}
	}
	return out, nil
}

// ForgedLogin signs a real login with web's task role but for another
// server ID and sends it to /v1/auth/aws-iam/login; the CP must refuse it.
func (d *Demo) ForgedLogin(ctx context.Context, dataplane string) (int, *problem.Problem, error) {
	tok, err := awslogin.NewLoginToken(ctx, d.awsConfig("web"), "someone-else")
	if err != nil {
		return 0, nil, fmt.Errorf("devdemo: signing the forged login: %w", err)
	}
	body, _ := json.Marshal(map[string]string{"mesh": "default", "name": dataplane, "proxyType": "dataplane", "loginToken": tok})
	pemBytes, err := os.ReadFile(d.o.DataDir + "/cp-ca.pem")
	if err != nil {
		return 0, nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.env["KUMA_CONTROL_PLANE_URL"]+dpapi.PathLogin, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("devdemo: calling the login endpoint: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, problem.Decode(resp.StatusCode, b), nil
}
