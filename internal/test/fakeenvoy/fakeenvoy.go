// Package fakeenvoy is a stand-in for Envoy where no Envoy binary exists
// (the local run and its end-to-end test): it reads the Envoy bootstrap the
// agent wrote, opens the ADS stream Envoy would open (same node, same TLS
// trust, same token — re-read from the token file for each stream, as
// file_based_metadata does; the certificate checked with the bootstrap's
// CA and SAN matchers, as Envoy checks it), ACKs or NACKs like Envoy, serves the admin
// endpoints the agent uses (/ready, /drain_listeners), and writes every
// resource it holds to a JSON file in the shape of `ecsmesh-cp inspect`.
package fakeenvoy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	grpccredv3 "github.com/envoyproxy/go-control-plane/envoy/config/grpc_credential/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
	"github.com/ecsmesh/ecsmesh/internal/test/adsclient"
)

// Types the stand-in subscribes to and writes, in output order.
var Types = []string{resourcev3.ListenerType, resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.SecretType, resourcev3.ExtensionConfigType}

// ADS is what the bootstrap says about the ADS server.
type ADS struct {
	// Address is host:port.
	Address string
	// ServerName is the TLS server name (SNI); "" sends none.
	ServerName string
	// CAFile is the trusted CA bundle ("" = the system roots).
	CAFile string
	// SANs are the names the server's certificate must carry (one is
	// enough): the ADS cluster's match_typed_subject_alt_names, or the
	// Google gRPC target's host, which gRPC checks.
	SANs []*tlsv3.SubjectAltNameMatcher
	// Token is an inline bearer token; TokenFile a file holding it.
	Token     string
	TokenFile string
}

// Config is what the stand-in takes from a bootstrap.
type Config struct {
	NodeID    string
	Metadata  map[string]any
	AdminPort int
	ADS       ADS
}

// FromBootstrap reads the parts of an Envoy bootstrap the stand-in uses.
func FromBootstrap(b *bootstrapv3.Bootstrap) (Config, error) {
	c := Config{NodeID: b.GetNode().GetId(), Metadata: b.GetNode().GetMetadata().AsMap()}
	if c.NodeID == "" {
		return c, errors.New("fakeenvoy: the bootstrap has no node.id")
	}
	c.AdminPort = int(b.GetAdmin().GetAddress().GetSocketAddress().GetPortValue())
	svcs := b.GetDynamicResources().GetAdsConfig().GetGrpcServices()
	if len(svcs) != 1 {
		return c, fmt.Errorf("fakeenvoy: want one ADS gRPC service, got %d", len(svcs))
	}
	svc := svcs[0]
	switch {
	case svc.GetEnvoyGrpc() != nil:
		for _, h := range svc.GetInitialMetadata() {
			if strings.EqualFold(h.GetKey(), "authorization") {
				c.ADS.Token = strings.TrimPrefix(h.GetValue(), "Bearer ")
			}
		}
		name := svc.GetEnvoyGrpc().GetClusterName()
		for _, cl := range b.GetStaticResources().GetClusters() {
			if cl.GetName() != name {
				continue
			}
			for _, e := range cl.GetLoadAssignment().GetEndpoints() {
				for _, lb := range e.GetLbEndpoints() {
					sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
					c.ADS.Address = net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
				}
			}
			if ts := cl.GetTransportSocket().GetTypedConfig(); ts != nil {
				var up tlsv3.UpstreamTlsContext
				if err := ts.UnmarshalTo(&up); err != nil {
					return c, fmt.Errorf("fakeenvoy: ADS cluster TLS: %w", err)
				}
				c.ADS.ServerName = up.GetSni()
				vc := up.GetCommonTlsContext().GetValidationContext()
				c.ADS.CAFile = vc.GetTrustedCa().GetFilename()
				c.ADS.SANs = vc.GetMatchTypedSubjectAltNames()
			}
		}
	case svc.GetGoogleGrpc() != nil:
		g := svc.GetGoogleGrpc()
		c.ADS.Address = g.GetTargetUri()
		c.ADS.CAFile = g.GetChannelCredentials().GetSslCredentials().GetRootCerts().GetFilename()
		host, _, err := net.SplitHostPort(c.ADS.Address)
		if err != nil {
			return c, fmt.Errorf("fakeenvoy: ADS target %q: %w", c.ADS.Address, err)
		}
		c.ADS.ServerName = host
		if net.ParseIP(host) != nil {
			c.ADS.ServerName = ""
		}
		c.ADS.SANs = []*tlsv3.SubjectAltNameMatcher{envoybootstrap.ServerSANMatcher(host)}
		for _, cc := range g.GetCallCredentials() {
			p := cc.GetFromPlugin()
			if p == nil || p.GetName() != envoybootstrap.FileBasedMetadata {
				continue
			}
			var fb grpccredv3.FileBasedMetadataConfig
			if err := p.GetTypedConfig().UnmarshalTo(&fb); err != nil {
				return c, fmt.Errorf("fakeenvoy: file_based_metadata: %w", err)
			}
			c.ADS.TokenFile = fb.GetSecretData().GetFilename()
		}
	}
	if c.ADS.Address == "" {
		return c, errors.New("fakeenvoy: the bootstrap names no ADS address")
	}
	if c.ADS.Token == "" && c.ADS.TokenFile == "" {
		return c, errors.New("fakeenvoy: the bootstrap carries no ADS token")
	}
	if len(c.ADS.SANs) == 0 {
		return c, errors.New("fakeenvoy: the ADS cluster's TLS context has no SAN matcher (match_typed_subject_alt_names): any certificate from its CAs could serve the configuration")
	}
	for _, m := range c.ADS.SANs {
		if err := supportedSAN(m); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Options are how to run.
type Options struct {
	Config Config
	// Output receives the held resources after every change ("" = none).
	Output string
	Logger *slog.Logger
}

// Run streams until ctx ends, reconnecting with backoff like Envoy.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tlsCfg, err := o.Config.tlsConfig()
	if err != nil {
		return err
	}
	token := func() (string, error) {
		if o.Config.ADS.TokenFile == "" {
			return o.Config.ADS.Token, nil
		}
		b, err := os.ReadFile(o.Config.ADS.TokenFile)
		if err != nil {
			return "", fmt.Errorf("fakeenvoy: reading token file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	client, err := adsclient.New(adsclient.Config{
		Address: o.Config.ADS.Address, TLS: tlsCfg, Token: token, NodeID: o.Config.NodeID,
		Metadata: o.Config.Metadata, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("fakeenvoy: %w", err)
	}
	defer client.Close()
	var ready sync.Map // "ready" → true once a consistent config is held
	if o.Config.AdminPort != 0 {
		stop, err := serveAdmin(ctx, o.Config.AdminPort, &ready)
		if err != nil {
			return err
		}
		defer stop()
	}
	go func() {
		for ctx.Err() == nil {
			_ = client.Wait(ctx, func(c *adsclient.Client) bool { return true })
			if ctx.Err() != nil {
				return
			}
			if client.Consistent() == nil {
				ready.Store("ready", true)
				if o.Output != "" {
					if err := WriteJSON(o.Output, client); err != nil {
						log.Warn("writing received configuration", "error", err)
					}
				}
			}
		}
	}()
	backoff := 250 * time.Millisecond
	for {
		err := client.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("ADS stream ended; reconnecting", "error", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// tlsConfig verifies the server as Envoy does: the chain against the
// bootstrap's CA (the system roots without one), then its SANs against the
// bootstrap's matchers. Go's own name check is off because the SNI may be
// empty (an IP host) and the matchers, not the SNI, decide.
func (c Config) tlsConfig() (*tls.Config, error) {
	var pool *x509.CertPool // nil: the system roots
	if c.ADS.CAFile != "" {
		pemBytes, err := os.ReadFile(c.ADS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("fakeenvoy: reading the CA bundle the bootstrap names: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("fakeenvoy: %s holds no PEM certificate", c.ADS.CAFile)
		}
	}
	if len(c.ADS.SANs) == 0 {
		return nil, errors.New("fakeenvoy: no SAN matcher for the ADS server")
	}
	sans := c.ADS.SANs
	return &tls.Config{
		ServerName: c.ADS.ServerName, MinVersion: tls.VersionTLS12,
		InsecureSkipVerify: true, // verified below, chain and SANs
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyServer(cs.PeerCertificates, pool, sans)
		},
	}, nil
}

func serveAdmin(ctx context.Context, port int, ready *sync.Map) (func(), error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("fakeenvoy: admin port: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if _, ok := ready.Load("ready"); !ok {
			http.Error(w, "PRE_INITIALIZING", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("LIVE\n"))
	})
	mux.HandleFunc("POST /drain_listeners", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("OK\n")) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}

// Snapshot is the JSON the stand-in writes: type URL → resources in
// protojson, each with "@type", sorted by name.
type Snapshot struct {
	Resources map[string][]json.RawMessage `json:"resources"`
}

// WriteJSON writes the client's held resources to path atomically.
func WriteJSON(path string, c *adsclient.Client) error {
	snap := Snapshot{Resources: map[string][]json.RawMessage{}}
	for _, t := range Types {
		res := c.Resources(t)
		names := make([]string, 0, len(res))
		for n := range res {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			b, err := protojson.Marshal(res[n])
			if err != nil {
				return fmt.Errorf("fakeenvoy: rendering %s: %w", n, err)
			}
			snap.Resources[t] = append(snap.Resources[t], b)
		}
	}
	out, err := json.MarshalIndent(snap, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
