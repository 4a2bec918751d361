package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

var (
	accountRE  = regexp.MustCompile(`^[0-9]{12}$`)
	domainRE   = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	zoneIDRE   = regexp.MustCompile(`^(/hostedzone/)?[A-Z0-9]{1,32}$`)
	loopback8  = netip.MustParsePrefix("127.0.0.0/8")
	roleNameRE = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
)

// checkCAPath returns what is wrong with the PostgreSQL CA file, if any.
func checkCAPath(p Postgres) string {
	if p.CAPath == "" {
		return ""
	}
	if p.TLSMode != "verifyCa" && p.TLSMode != "verifyFull" {
		return fmt.Sprintf("is only used with KUMA_STORE_POSTGRES_TLS_MODE=verifyCa or verifyFull, not %q; use verifyFull so that the store (which holds every CA and signing key) is reached only through a server certificate of that CA naming KUMA_STORE_POSTGRES_HOST", p.TLSMode)
	}
	data, err := os.ReadFile(p.CAPath)
	if err != nil {
		return fmt.Sprintf("cannot read %s: %v", p.CAPath, err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return fmt.Sprintf("holds no PEM certificate: %s (for RDS: https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem)", p.CAPath)
	}
	return ""
}

// sharedServerID is the server ID every deployment used to default to.
const sharedServerID = "ecsmesh"

const chooseServerID = "choose a value unique to this control plane, e.g. a random one (openssl rand -hex 16), and give the same value to its sidecars (ECSMESH_AWSIAM_SERVER_ID or --server-id of ecsmesh-dp)"

// Validate returns every problem of c, each named by the variable (or
// flag, or config key) that set it.
func (c *Config) Validate() *validation.Error {
	verr := &validation.Error{}
	add := func(field, env, msg string) { verr.Add(validation.Root().Field(c.source(field, env)), msg) }

	for _, a := range []struct{ field, env, v string }{
		{"apiAddr", "ECSMESH_API_ADDR", c.APIAddr},
		{"xdsAddr", "ECSMESH_XDS_ADDR", c.XDSAddr},
		{"adminAddr", "ECSMESH_ADMIN_ADDR", c.AdminAddr},
	} {
		if _, port, err := net.SplitHostPort(a.v); err != nil || port == "" {
			add(a.field, a.env, fmt.Sprintf("must be host:port such as 127.0.0.1:5681 or :5678, got %q", a.v))
			continue
		}
		if c.Auth.ProxyType == AuthNone && !IsLoopback(a.v) {
			add(a.field, a.env, fmt.Sprintf("must be a loopback address (127.0.0.1:port) when KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE=none, got %q: without authentication the CP serves local development only", a.v))
		}
	}
	if !IsLoopback(c.AdminAddr) && c.AdminToken == "" {
		add("adminToken", "ECSMESH_ADMIN_TOKEN", fmt.Sprintf("must be set when the admin API listens on a non-loopback address (%s); or bind it to 127.0.0.1", c.AdminAddr))
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		add("adminToken", "ECSMESH_ADMIN_TOKEN", "must be at least 16 characters")
	}
	if c.DataDir == "" {
		add("dataDir", "ECSMESH_DATA_DIR", "must be set")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		add("tlsCertFile", "KUMA_GENERAL_TLS_CERT_FILE", "KUMA_GENERAL_TLS_CERT_FILE and KUMA_GENERAL_TLS_KEY_FILE must be set together")
	}
	if (c.AdminTLSCertFile == "") != (c.AdminTLSKeyFile == "") {
		add("adminTlsCertFile", "ECSMESH_ADMIN_TLS_CERT_FILE", "ECSMESH_ADMIN_TLS_CERT_FILE and ECSMESH_ADMIN_TLS_KEY_FILE must be set together")
	}
	for _, f := range []struct{ field, env, v string }{
		{"filterWasmPath", "ECSMESH_FILTER_WASM_PATH", c.FilterWasmPath},
		{"filterGoPath", "ECSMESH_FILTER_GO_PATH", c.FilterGoPath},
	} {
		if !strings.HasPrefix(f.v, "/") {
			add(f.field, f.env, fmt.Sprintf("must be an absolute path on the sidecar, got %q", f.v))
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("logLevel", "ECSMESH_LOG_LEVEL", "must be debug, info, warn or error")
	}

	switch c.Store.Type {
	case StoreSQLite, StoreMemory:
	case StorePostgres:
		p := c.Store.Postgres
		if p.Host == "" {
			add("store.postgres.host", "KUMA_STORE_POSTGRES_HOST", "must be set when KUMA_STORE_TYPE=postgres")
		}
		if p.Port < 1 || p.Port > 65535 {
			add("store.postgres.port", "KUMA_STORE_POSTGRES_PORT", "must be in 1..65535")
		}
		if p.DBName == "" {
			add("store.postgres.dbName", "KUMA_STORE_POSTGRES_DB_NAME", "must be set when KUMA_STORE_TYPE=postgres")
		}
		switch p.TLSMode {
		case "disable", "verifyNone", "verifyCa", "verifyFull":
		default:
			add("store.postgres.tlsMode", "KUMA_STORE_POSTGRES_TLS_MODE", "must be disable, verifyNone, verifyCa or verifyFull")
		}
		if msg := checkCAPath(p); msg != "" {
			add("store.postgres.tlsCaPath", "KUMA_STORE_POSTGRES_TLS_CA_PATH", msg)
		}
	default:
		add("store.type", "KUMA_STORE_TYPE", fmt.Sprintf("must be sqlite, postgres or memory, got %q", c.Store.Type))
	}

	switch c.Auth.ProxyType {
	case AuthAWSIAM, AuthNone:
	default:
		add("auth.proxyType", "KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE", fmt.Sprintf("must be aws-iam or none, got %q", c.Auth.ProxyType))
	}
	for i, a := range c.Auth.AuthorizedAccountIDs {
		if !accountRE.MatchString(a) {
			add("auth.authorizedAccountIds", "KMESH_AWSIAM_AUTHORIZEDACCOUNTIDS", fmt.Sprintf("entry %d must be a 12-digit AWS account ID, got %q", i, a))
		}
	}
	if n := c.Auth.CrossAccountRoleName; n != "" && !roleNameRE.MatchString(n) {
		add("auth.crossAccountRoleName", "ECSMESH_AWSIAM_CROSS_ACCOUNT_ROLE_NAME", fmt.Sprintf("must be an IAM role name (not an ARN), got %q", n))
	}
	if c.Auth.LoginsPerSecond < 0 {
		add("auth.loginsPerSecond", "ECSMESH_AWSIAM_LOGINS_PER_SECOND", fmt.Sprintf("must be 0 (default 5) or more, got %d", c.Auth.LoginsPerSecond))
	}
	if c.Auth.LoginBurst < 0 {
		add("auth.loginBurst", "ECSMESH_AWSIAM_LOGIN_BURST", fmt.Sprintf("must be 0 (default 50) or more, got %d", c.Auth.LoginBurst))
	}
	if c.Auth.ProxyType == AuthAWSIAM {
		switch id := strings.TrimSpace(c.Auth.ServerID); {
		case id == "":
			add("auth.serverId", "ECSMESH_AWSIAM_SERVER_ID", "must be set with KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE=aws-iam: "+chooseServerID)
		case strings.EqualFold(id, sharedServerID):
			add("auth.serverId", "ECSMESH_AWSIAM_SERVER_ID", fmt.Sprintf("must not be %q, the old default every deployment shared: a login signed for another ecsmesh deployment could be replayed here; %s", sharedServerID, chooseServerID))
		}
	}

	if !domainRE.MatchString(c.DNS.Domain) {
		add("dns.domain", "KUMA_DNS_SERVER_DOMAIN", fmt.Sprintf("must be a DNS domain such as mesh.local, got %q", c.DNS.Domain))
	}
	if c.DNS.VIPPort <= 1024 || c.DNS.VIPPort > 65535 {
		add("dns.vipPort", "KUMA_DNS_SERVER_SERVICE_VIP_PORT", fmt.Sprintf("must be in 1025..65535 (Fargate tasks cannot bind privileged ports), got %d", c.DNS.VIPPort))
	}
	for _, r := range []struct{ field, env, v string }{
		{"dns.serverCidr", "KUMA_DNS_SERVER_CIDR", c.DNS.ServerCIDR},
		{"dns.serviceCidr", "KUMA_IPAM_MESH_SERVICE_CIDR", c.DNS.ServiceCIDR},
		{"dns.externalServiceCidr", "KUMA_IPAM_MESH_EXTERNAL_SERVICE_CIDR", c.DNS.ExternalServiceCIDR},
		{"dns.multiZoneServiceCidr", "KUMA_IPAM_MESH_MULTI_ZONE_SERVICE_CIDR", c.DNS.MultiZoneServiceCIDR},
	} {
		if r.v == "" {
			continue
		}
		p, err := netip.ParsePrefix(r.v)
		if err != nil || !p.Addr().Is4() {
			add(r.field, r.env, fmt.Sprintf("must be an IPv4 CIDR such as 127.1.0.0/16, got %q", r.v))
			continue
		}
		if c.Route53.Enabled && (!loopback8.Contains(p.Addr()) || p.Bits() < 8) {
			add(r.field, r.env, fmt.Sprintf("must lie in 127.0.0.0/8 when KMESH_RUNTIME_AWS_ROUTE53_ENABLED=true (sidecars listen on loopback VIPs; Fargate has no transparent proxy), got %s", r.v))
		}
		if p.Bits() > 30 {
			add(r.field, r.env, fmt.Sprintf("is too small (%s); use at least a /30", r.v))
		}
	}

	if c.Route53.Enabled {
		if c.Route53.HostedZoneID == "" {
			add("route53.hostedZoneId", "KMESH_RUNTIME_AWS_ROUTE53_HOSTED_ZONE_ID", "must be set when KMESH_RUNTIME_AWS_ROUTE53_ENABLED=true (the private hosted zone's ID, e.g. Z0123456789ABCDEFGHIJ)")
		} else if !zoneIDRE.MatchString(c.Route53.HostedZoneID) {
			add("route53.hostedZoneId", "KMESH_RUNTIME_AWS_ROUTE53_HOSTED_ZONE_ID", fmt.Sprintf("must be a hosted zone ID of upper-case letters and digits, got %q", c.Route53.HostedZoneID))
		}
	}
	if c.Route53.RefreshInterval < 1e9 {
		add("route53.refreshInterval", "KMESH_RUNTIME_AWS_ROUTE53_REFRESH_INTERVAL", "must be at least 1s")
	}
	if c.Route53.RequestsPerSecond <= 0 || c.Route53.RequestsPerSecond > 5 {
		add("route53.requestsPerSecond", "ECSMESH_ROUTE53_REQUESTS_PER_SECOND", "must be in (0, 5]: Route53 allows 5 requests per second per account")
	}
	if c.Route53.OwnerID == "" || strings.ContainsAny(c.Route53.OwnerID, ",\"= ") {
		add("route53.ownerId", "ECSMESH_ROUTE53_OWNER_ID", "must be a non-empty word without commas, quotes, '=' or spaces")
	}
	if c.Route53.RecordQuota < 1 {
		add("route53.recordQuota", "ECSMESH_ROUTE53_RECORD_QUOTA", fmt.Sprintf("must be at least 1 (the hosted zone's record set quota; Route53's default is 10000), got %d", c.Route53.RecordQuota))
	}
	return verr
}
