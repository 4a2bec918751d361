// Package config is the control plane's configuration: defaults, then a
// YAML file (--config), then environment variables (Kong Mesh on ECS names
// work unchanged), then flags. Validation reports every problem at once and
// names the variable to fix.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
)

// Auth proxy types (KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE).
const (
	AuthAWSIAM = "aws-iam"
	AuthNone   = "none"
)

// Store types (KUMA_STORE_TYPE).
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
	StoreMemory   = "memory"
)

// Config is the whole CP configuration. YAML keys follow the json tags.
type Config struct {
	// APIAddr serves sidecars over HTTPS (ECSMESH_API_ADDR, --api-addr).
	APIAddr string `json:"apiAddr"`
	// XDSAddr serves ADS over gRPC+TLS (ECSMESH_XDS_ADDR, --xds-addr).
	XDSAddr string `json:"xdsAddr"`
	// AdminAddr serves the admin API (ECSMESH_ADMIN_ADDR, --admin-addr).
	AdminAddr string `json:"adminAddr"`
	// AdminToken is the bearer token of the admin API (ECSMESH_ADMIN_TOKEN);
	// required when AdminAddr is not loopback.
	AdminToken string `json:"-"`
	// AdminTLSCertFile and AdminTLSKeyFile serve the admin API with this
	// certificate (ECSMESH_ADMIN_TLS_CERT_FILE, ECSMESH_ADMIN_TLS_KEY_FILE);
	// see AdminTLS.
	AdminTLSCertFile string `json:"adminTlsCertFile,omitempty"`
	AdminTLSKeyFile  string `json:"adminTlsKeyFile,omitempty"`
	// DataDir holds the SQLite file and local keys (ECSMESH_DATA_DIR).
	DataDir string `json:"dataDir"`
	// TLSCertFile and TLSKeyFile, when set, serve the API and xDS with this
	// certificate instead of one from the CP's own CA
	// (KUMA_GENERAL_TLS_CERT_FILE, KUMA_GENERAL_TLS_KEY_FILE).
	TLSCertFile string `json:"tlsCertFile,omitempty"`
	TLSKeyFile  string `json:"tlsKeyFile,omitempty"`
	// ExtraTLSNames are more DNS names for the CP's own server certificate
	// (ECSMESH_TLS_SANS, comma-separated), e.g. the CP's service DNS name.
	ExtraTLSNames []string `json:"tlsNames,omitempty"`
	// LogLevel is debug, info, warn or error (ECSMESH_LOG_LEVEL).
	LogLevel string `json:"logLevel"`
	// InstanceID names this replica in leases (ECSMESH_INSTANCE_ID);
	// defaults to hostname-pid.
	InstanceID string `json:"instanceId,omitempty"`

	// FilterWasmPath and FilterGoPath are where sidecars hold the filter
	// (ECSMESH_FILTER_WASM_PATH, ECSMESH_FILTER_GO_PATH): the paths the CP
	// tells Envoy to load. The sidecar image uses the defaults.
	FilterWasmPath string `json:"filterWasmPath"`
	FilterGoPath   string `json:"filterGoPath"`

	// AutoReachableServices limits the outbound configuration of a
	// Dataplane that lists no reachableServices to the services whose
	// permissions admit its identity (ECSMESH_AUTO_REACHABLE_SERVICES).
	AutoReachableServices bool `json:"autoReachableServices"`

	Store   Store   `json:"store"`
	Auth    Auth    `json:"auth"`
	DNS     DNS     `json:"dns"`
	Route53 Route53 `json:"route53"`

	// sources maps a field to where its value came from, for messages.
	sources map[string]string
}

// Store selects and configures the store.
type Store struct {
	Type     string   `json:"type"`
	Postgres Postgres `json:"postgres"`
}

// Postgres is the PostgreSQL connection (KUMA_STORE_POSTGRES_*).
type Postgres struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	User     string `json:"user"`
	Password string `json:"-"`
	DBName   string `json:"dbName"`
	// TLSMode is Kuma's: disable, verifyNone, verifyCa, verifyFull.
	TLSMode string `json:"tlsMode"`
	// CAPath is a PEM file of the CAs that verify the server with verifyCa
	// and verifyFull, e.g. the RDS global bundle
	// (KUMA_STORE_POSTGRES_TLS_CA_PATH; default: the system's roots).
	CAPath string `json:"tlsCaPath,omitempty"`
	// Schema keeps ecsmesh's tables in one schema (created if missing), so
	// that one database can hold several installations
	// (ECSMESH_STORE_POSTGRES_SCHEMA; default: the user's search_path).
	Schema string `json:"schema,omitempty"`
}

// Auth configures sidecar authentication.
type Auth struct {
	// ProxyType is aws-iam or none (KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE).
	ProxyType string `json:"proxyType"`
	// ReloadableTokens: Envoy reads the xDS token from a file the agent
	// refreshes (KUMA_DP_SERVER_AUTHN_ENABLE_RELOADABLE_TOKENS).
	ReloadableTokens bool `json:"reloadableTokens"`
	// AuthorizedAccountIDs may log in (KMESH_AWSIAM_AUTHORIZEDACCOUNTIDS).
	AuthorizedAccountIDs []string `json:"authorizedAccountIds"`
	// ServerID is the signed X-Ecsmesh-Server-Id value required in logins
	// (ECSMESH_AWSIAM_SERVER_ID). No default: with aws-iam it must be set to
	// a value unique to this deployment, shared by the CP and its sidecars,
	// so that a login signed for another deployment is refused here.
	ServerID string `json:"serverId"`
	// VerifyECSTask also proves the task with ecs:DescribeTasks
	// (ECSMESH_AWSIAM_VERIFY_ECS_TASK).
	VerifyECSTask bool `json:"verifyEcsTask"`
	// CrossAccountRoleName is a role, in each other allowed account, that
	// trusts the CP and allows iam:GetRole; the CP assumes it to read task
	// roles there (ECSMESH_AWSIAM_CROSS_ACCOUNT_ROLE_NAME). Empty: task
	// roles must be in the CP's own account.
	CrossAccountRoleName string `json:"crossAccountRoleName,omitempty"`
	// AllowAnyServiceTag lets a role tagged kuma.io/service "*" serve any
	// service (ECSMESH_AWSIAM_ALLOW_ANY_SERVICE_TAG; default false).
	AllowAnyServiceTag bool `json:"allowAnyServiceTag,omitempty"`
	// LoginsPerSecond and LoginBurst bound IAM logins per source address
	// before the CP calls STS (ECSMESH_AWSIAM_LOGINS_PER_SECOND, default
	// 5; ECSMESH_AWSIAM_LOGIN_BURST, default 50).
	LoginsPerSecond int `json:"loginsPerSecond,omitempty"`
	LoginBurst      int `json:"loginBurst,omitempty"`
}

// DNS configures hostnames and VIPs.
type DNS struct {
	// Domain is the hosted zone's domain (KUMA_DNS_SERVER_DOMAIN).
	Domain string `json:"domain"`
	// ServerCIDR is the legacy VIP range (KUMA_DNS_SERVER_CIDR); it is the
	// service range when ServiceCIDR is not set.
	ServerCIDR string `json:"serverCidr"`
	// ServiceCIDR, ExternalServiceCIDR and MultiZoneServiceCIDR are the
	// VIP ranges (KUMA_IPAM_MESH_*_CIDR).
	ServiceCIDR          string `json:"serviceCidr"`
	ExternalServiceCIDR  string `json:"externalServiceCidr"`
	MultiZoneServiceCIDR string `json:"multiZoneServiceCidr"`
	// VIPPort is the port every VIP listener shares
	// (KUMA_DNS_SERVER_SERVICE_VIP_PORT).
	VIPPort int `json:"vipPort"`
}

// Route53 configures the Route53 writer (KMESH_RUNTIME_AWS_ROUTE53_*).
type Route53 struct {
	Enabled         bool          `json:"enabled"`
	HostedZoneID    string        `json:"hostedZoneId"`
	RefreshInterval time.Duration `json:"refreshInterval"`
	// RequestsPerSecond is the client-side rate limit
	// (ECSMESH_ROUTE53_REQUESTS_PER_SECOND, default 5).
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	// OwnerID marks the records this CP owns; every replica of one CP
	// deployment must share it (ECSMESH_ROUTE53_OWNER_ID, default "ecsmesh").
	OwnerID string `json:"ownerId"`
	// RecordQuota is the hosted zone's quota of record sets: the writer
	// warns near it and never writes past it (ECSMESH_ROUTE53_RECORD_QUOTA,
	// default 10000, Route53's default).
	RecordQuota int `json:"recordQuota"`
}

// Default returns the defaults (listed in docs/reference.md).
func Default() Config {
	return Config{
		APIAddr:        ":5678",
		XDSAddr:        ":5679",
		AdminAddr:      "127.0.0.1:5681",
		DataDir:        "./ecsmesh-data",
		LogLevel:       "info",
		FilterWasmPath: dpapi.FilterWasmPath,
		FilterGoPath:   dpapi.FilterGoPath,
		Store:          Store{Type: StoreSQLite, Postgres: Postgres{Host: "127.0.0.1", Port: 5432, User: "postgres", DBName: "ecsmesh", TLSMode: "disable"}},
		Auth:           Auth{ProxyType: AuthAWSIAM},
		DNS: DNS{
			Domain:               "mesh.local",
			ServiceCIDR:          "127.1.0.0/16",
			ExternalServiceCIDR:  "127.2.0.0/16",
			MultiZoneServiceCIDR: "127.3.0.0/16",
			VIPPort:              8080,
		},
		Route53: Route53{RefreshInterval: 10 * time.Second, RequestsPerSecond: 5, OwnerID: "ecsmesh", RecordQuota: 10000},
	}
}

// ServiceCIDRPrefix returns the VIP range for services, parsed.
func (c *Config) ServiceCIDRPrefix() netip.Prefix {
	p, _ := netip.ParsePrefix(c.DNS.ServiceCIDR)
	return p
}

// PostgresDSN renders the PostgreSQL connection string.
func (c *Config) PostgresDSN() string {
	p := c.Store.Postgres
	mode := map[string]string{"disable": "disable", "verifyNone": "require", "verifyCa": "verify-ca", "verifyFull": "verify-full"}[p.TLSMode]
	if mode == "" {
		mode = "disable"
	}
	dsn := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=%s", quoteDSN(p.Host), p.Port, quoteDSN(p.User), quoteDSN(p.DBName), mode)
	if p.CAPath != "" && (mode == "verify-ca" || mode == "verify-full") {
		dsn += " sslrootcert=" + quoteDSN(p.CAPath)
	}
	if p.Password != "" {
		dsn += " password=" + quoteDSN(p.Password)
	}
	return dsn
}

func quoteDSN(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// source names where a field's value came from, or its env variable.
func (c *Config) source(field, env string) string {
	if s, ok := c.sources[field]; ok {
		return s
	}
	return env
}

func (c *Config) setSource(field, src string) {
	if c.sources == nil {
		c.sources = map[string]string{}
	}
	c.sources[field] = src
}

// AdminTLS reports whether the admin API serves HTTPS: always when it
// listens off loopback (its token must not cross the network in clear),
// and on loopback when it is given a certificate. Without
// ECSMESH_ADMIN_TLS_* it presents the API's certificate.
func (c *Config) AdminTLS() bool {
	return !IsLoopback(c.AdminAddr) || c.AdminTLSCertFile != ""
}

// IsLoopback reports whether a listen address binds only loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
