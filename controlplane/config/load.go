package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// envVar binds one environment variable to a field of Config.
type envVar struct {
	name  string
	field string
	set   func(c *Config, v string) error
}

func str(dst func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *dst(c) = v; return nil }
}

func boolean(dst func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("must be true or false, got %q", v)
		}
		*dst(c) = b
		return nil
	}
}

func integer(dst func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("must be a whole number, got %q", v)
		}
		*dst(c) = n
		return nil
	}
}

// envVars lists every variable the CP reads (docs/reference.md lists them
// too). Tests and the deployment templates check against this list.
var envVars = []envVar{
	{"ECSMESH_API_ADDR", "apiAddr", str(func(c *Config) *string { return &c.APIAddr })},
	{"ECSMESH_XDS_ADDR", "xdsAddr", str(func(c *Config) *string { return &c.XDSAddr })},
	{"ECSMESH_ADMIN_ADDR", "adminAddr", str(func(c *Config) *string { return &c.AdminAddr })},
	{"ECSMESH_ADMIN_TOKEN", "adminToken", str(func(c *Config) *string { return &c.AdminToken })},
	{"ECSMESH_ADMIN_TLS_CERT_FILE", "adminTlsCertFile", str(func(c *Config) *string { return &c.AdminTLSCertFile })},
	{"ECSMESH_ADMIN_TLS_KEY_FILE", "adminTlsKeyFile", str(func(c *Config) *string { return &c.AdminTLSKeyFile })},
	{"ECSMESH_DATA_DIR", "dataDir", str(func(c *Config) *string { return &c.DataDir })},
	{"ECSMESH_LOG_LEVEL", "logLevel", str(func(c *Config) *string { return &c.LogLevel })},
	{"ECSMESH_INSTANCE_ID", "instanceId", str(func(c *Config) *string { return &c.InstanceID })},
	{"KUMA_GENERAL_TLS_CERT_FILE", "tlsCertFile", str(func(c *Config) *string { return &c.TLSCertFile })},
	{"KUMA_GENERAL_TLS_KEY_FILE", "tlsKeyFile", str(func(c *Config) *string { return &c.TLSKeyFile })},
	{"ECSMESH_TLS_SANS", "tlsNames", func(c *Config, v string) error {
		c.ExtraTLSNames = splitList(v)
		return nil
	}},
	{"ECSMESH_FILTER_WASM_PATH", "filterWasmPath", str(func(c *Config) *string { return &c.FilterWasmPath })},
	{"ECSMESH_FILTER_GO_PATH", "filterGoPath", str(func(c *Config) *string { return &c.FilterGoPath })},
	{"ECSMESH_AUTO_REACHABLE_SERVICES", "autoReachableServices", boolean(func(c *Config) *bool { return &c.AutoReachableServices })},
	{"KUMA_STORE_TYPE", "store.type", str(func(c *Config) *string { return &c.Store.Type })},
	{"KUMA_STORE_POSTGRES_HOST", "store.postgres.host", str(func(c *Config) *string { return &c.Store.Postgres.Host })},
	{"KUMA_STORE_POSTGRES_PORT", "store.postgres.port", integer(func(c *Config) *int { return &c.Store.Postgres.Port })},
	{"KUMA_STORE_POSTGRES_USER", "store.postgres.user", str(func(c *Config) *string { return &c.Store.Postgres.User })},
	{"KUMA_STORE_POSTGRES_PASSWORD", "store.postgres.password", str(func(c *Config) *string { return &c.Store.Postgres.Password })},
	{"KUMA_STORE_POSTGRES_DB_NAME", "store.postgres.dbName", str(func(c *Config) *string { return &c.Store.Postgres.DBName })},
	{"KUMA_STORE_POSTGRES_TLS_MODE", "store.postgres.tlsMode", str(func(c *Config) *string { return &c.Store.Postgres.TLSMode })},
	{"KUMA_STORE_POSTGRES_TLS_CA_PATH", "store.postgres.tlsCaPath", str(func(c *Config) *string { return &c.Store.Postgres.CAPath })},
	{"ECSMESH_STORE_POSTGRES_SCHEMA", "store.postgres.schema", str(func(c *Config) *string { return &c.Store.Postgres.Schema })},
	{"KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE", "auth.proxyType", str(func(c *Config) *string { return &c.Auth.ProxyType })},
	{"KUMA_DP_SERVER_AUTHN_ENABLE_RELOADABLE_TOKENS", "auth.reloadableTokens", boolean(func(c *Config) *bool { return &c.Auth.ReloadableTokens })},
	{"KMESH_AWSIAM_AUTHORIZEDACCOUNTIDS", "auth.authorizedAccountIds", func(c *Config, v string) error {
		c.Auth.AuthorizedAccountIDs = splitList(v)
		return nil
	}},
	{"ECSMESH_AWSIAM_SERVER_ID", "auth.serverId", str(func(c *Config) *string { return &c.Auth.ServerID })},
	{"ECSMESH_AWSIAM_CROSS_ACCOUNT_ROLE_NAME", "auth.crossAccountRoleName", str(func(c *Config) *string { return &c.Auth.CrossAccountRoleName })},
	{"ECSMESH_AWSIAM_VERIFY_ECS_TASK", "auth.verifyEcsTask", boolean(func(c *Config) *bool { return &c.Auth.VerifyECSTask })},
	{"ECSMESH_AWSIAM_ALLOW_ANY_SERVICE_TAG", "auth.allowAnyServiceTag", boolean(func(c *Config) *bool { return &c.Auth.AllowAnyServiceTag })},
	{"ECSMESH_AWSIAM_LOGINS_PER_SECOND", "auth.loginsPerSecond", integer(func(c *Config) *int { return &c.Auth.LoginsPerSecond })},
	{"ECSMESH_AWSIAM_LOGIN_BURST", "auth.loginBurst", integer(func(c *Config) *int { return &c.Auth.LoginBurst })},
	{"KUMA_DNS_SERVER_DOMAIN", "dns.domain", str(func(c *Config) *string { return &c.DNS.Domain })},
	{"KUMA_DNS_SERVER_CIDR", "dns.serverCidr", str(func(c *Config) *string { return &c.DNS.ServerCIDR })},
	{"KUMA_IPAM_MESH_SERVICE_CIDR", "dns.serviceCidr", str(func(c *Config) *string { return &c.DNS.ServiceCIDR })},
	{"KUMA_IPAM_MESH_EXTERNAL_SERVICE_CIDR", "dns.externalServiceCidr", str(func(c *Config) *string { return &c.DNS.ExternalServiceCIDR })},
	{"KUMA_IPAM_MESH_MULTI_ZONE_SERVICE_CIDR", "dns.multiZoneServiceCidr", str(func(c *Config) *string { return &c.DNS.MultiZoneServiceCIDR })},
	{"KUMA_DNS_SERVER_SERVICE_VIP_PORT", "dns.vipPort", integer(func(c *Config) *int { return &c.DNS.VIPPort })},
	{"KMESH_RUNTIME_AWS_ROUTE53_ENABLED", "route53.enabled", boolean(func(c *Config) *bool { return &c.Route53.Enabled })},
	{"KMESH_RUNTIME_AWS_ROUTE53_HOSTED_ZONE_ID", "route53.hostedZoneId", str(func(c *Config) *string { return &c.Route53.HostedZoneID })},
	{"KMESH_RUNTIME_AWS_ROUTE53_REFRESH_INTERVAL", "route53.refreshInterval", func(c *Config, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("must be a duration such as 10s, got %q", v)
		}
		c.Route53.RefreshInterval = d
		return nil
	}},
	{"ECSMESH_ROUTE53_REQUESTS_PER_SECOND", "route53.requestsPerSecond", func(c *Config, v string) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return fmt.Errorf("must be a number, got %q", v)
		}
		c.Route53.RequestsPerSecond = f
		return nil
	}},
	{"ECSMESH_ROUTE53_OWNER_ID", "route53.ownerId", str(func(c *Config) *string { return &c.Route53.OwnerID })},
	{"ECSMESH_ROUTE53_RECORD_QUOTA", "route53.recordQuota", integer(func(c *Config) *int { return &c.Route53.RecordQuota })},
}

// EnvNames lists every environment variable the CP reads.
func EnvNames() []string {
	out := make([]string, len(envVars))
	for i, e := range envVars {
		out[i] = e.name
	}
	return out
}

// Flags are the command-line overrides; empty strings mean "not given".
type Flags struct {
	ConfigFile string
	APIAddr    string
	XDSAddr    string
	AdminAddr  string
	DataDir    string
}

// Load builds the configuration from defaults, the file, the environment
// (lookup, usually os.LookupEnv) and flags, and validates it. The error is a
// *validation.Error naming each variable, key or flag at fault.
func Load(flags Flags, lookup func(string) (string, bool)) (Config, error) {
	c := Default()
	verr := &validation.Error{}
	if flags.ConfigFile != "" {
		if err := c.loadFile(flags.ConfigFile); err != nil {
			verr.Add(validation.Root().Field("--config"), err.Error())
			return c, verr
		}
	}
	for _, e := range envVars {
		v, ok := lookup(e.name)
		if !ok {
			continue
		}
		if err := e.set(&c, v); err != nil {
			verr.Add(validation.Root().Field(e.name), err.Error())
			continue
		}
		c.setSource(e.field, e.name)
	}
	for _, f := range []struct {
		v, field, flag string
		dst            *string
	}{
		{flags.APIAddr, "apiAddr", "--api-addr", &c.APIAddr},
		{flags.XDSAddr, "xdsAddr", "--xds-addr", &c.XDSAddr},
		{flags.AdminAddr, "adminAddr", "--admin-addr", &c.AdminAddr},
		{flags.DataDir, "dataDir", "--data-dir", &c.DataDir},
	} {
		if f.v != "" {
			*f.dst = f.v
			c.setSource(f.field, f.flag)
		}
	}
	if c.DNS.ServerCIDR != "" && c.sources["dns.serviceCidr"] == "" {
		// The legacy variable names the service range unless the new one is set.
		c.DNS.ServiceCIDR = c.DNS.ServerCIDR
		c.setSource("dns.serviceCidr", c.source("dns.serverCidr", "KUMA_DNS_SERVER_CIDR"))
	}
	if c.InstanceID == "" {
		host, _ := os.Hostname()
		c.InstanceID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	verr.Violations = append(verr.Violations, c.Validate().Violations...)
	return c, verr.OrNil()
}

func (c *Config) loadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if err := yaml.UnmarshalStrict(data, c); err != nil {
		return fmt.Errorf("parsing %s: %w", path, err)
	}
	var generic map[string]any
	if err := yaml.Unmarshal(data, &generic); err != nil {
		return fmt.Errorf("parsing %s: %w", path, err)
	}
	c.markSources("", generic, path)
	return nil
}

// markSources records "config key K in FILE" for every key the file sets.
func (c *Config) markSources(prefix string, m map[string]any, path string) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			c.markSources(key, sub, path)
			continue
		}
		c.setSource(key, "config key "+key+" in "+path)
	}
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
