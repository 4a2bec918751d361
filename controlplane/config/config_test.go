package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testServerID is a server ID unique to these tests.
const testServerID = "config-test-3f9a1c"

// env looks up m, with a valid server ID unless m sets one (tests of
// other settings must not trip over the server ID check).
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		if !ok && k == "ECSMESH_AWSIAM_SERVER_ID" {
			return testServerID, true
		}
		return v, ok
	}
}

func TestLoadRefusesAndNamesTheVariable(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"privileged VIP port", map[string]string{"KUMA_DNS_SERVER_SERVICE_VIP_PORT": "80"}, []string{"KUMA_DNS_SERVER_SERVICE_VIP_PORT: must be in 1025..65535"}},
		{"VIP port not a number", map[string]string{"KUMA_DNS_SERVER_SERVICE_VIP_PORT": "http"}, []string{"KUMA_DNS_SERVER_SERVICE_VIP_PORT: must be a whole number"}},
		{"unknown store", map[string]string{"KUMA_STORE_TYPE": "etcd"}, []string{"KUMA_STORE_TYPE: must be sqlite, postgres or memory"}},
		{"non-loopback CIDR with Route53", map[string]string{
			"KMESH_RUNTIME_AWS_ROUTE53_ENABLED": "true", "KMESH_RUNTIME_AWS_ROUTE53_HOSTED_ZONE_ID": "Z1",
			"KUMA_IPAM_MESH_SERVICE_CIDR": "240.0.0.0/4", "KUMA_IPAM_MESH_EXTERNAL_SERVICE_CIDR": "10.0.0.0/8",
		}, []string{"KUMA_IPAM_MESH_SERVICE_CIDR: must lie in 127.0.0.0/8", "KUMA_IPAM_MESH_EXTERNAL_SERVICE_CIDR: must lie in 127.0.0.0/8"}},
		{"legacy CIDR with Route53", map[string]string{
			"KMESH_RUNTIME_AWS_ROUTE53_ENABLED": "true", "KMESH_RUNTIME_AWS_ROUTE53_HOSTED_ZONE_ID": "Z1", "KUMA_DNS_SERVER_CIDR": "240.0.0.0/4",
		}, []string{"KUMA_DNS_SERVER_CIDR: must lie in 127.0.0.0/8"}},
		{"Route53 without zone", map[string]string{"KMESH_RUNTIME_AWS_ROUTE53_ENABLED": "yes"}, []string{"KMESH_RUNTIME_AWS_ROUTE53_ENABLED: must be true or false"}},
		{"Route53 on, zone missing", map[string]string{"KMESH_RUNTIME_AWS_ROUTE53_ENABLED": "true"}, []string{"KMESH_RUNTIME_AWS_ROUTE53_HOSTED_ZONE_ID: must be set"}},
		{"auth none on all interfaces", map[string]string{"KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE": "none"}, []string{"ECSMESH_API_ADDR: must be a loopback address", "ECSMESH_XDS_ADDR: must be a loopback address"}},
		{"unknown proxy type", map[string]string{"KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE": "k8s"}, []string{"KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE: must be aws-iam or none"}},
		{"admin exposed without token", map[string]string{"ECSMESH_ADMIN_ADDR": "0.0.0.0:5681"}, []string{"ECSMESH_ADMIN_TOKEN: must be set"}},
		{"admin certificate without key", map[string]string{"ECSMESH_ADMIN_TLS_CERT_FILE": "/etc/admin.pem"}, []string{"ECSMESH_ADMIN_TLS_CERT_FILE: ECSMESH_ADMIN_TLS_CERT_FILE and ECSMESH_ADMIN_TLS_KEY_FILE must be set together"}},
		{"bad account", map[string]string{"KMESH_AWSIAM_AUTHORIZEDACCOUNTIDS": "123456789012, 42"}, []string{`KMESH_AWSIAM_AUTHORIZEDACCOUNTIDS: entry 1 must be a 12-digit AWS account ID, got "42"`}},
		{"bad tls mode", map[string]string{"KUMA_STORE_TYPE": "postgres", "KUMA_STORE_POSTGRES_TLS_MODE": "on"}, []string{"KUMA_STORE_POSTGRES_TLS_MODE"}},
		{"server ID unset", map[string]string{"ECSMESH_AWSIAM_SERVER_ID": ""}, []string{"ECSMESH_AWSIAM_SERVER_ID: must be set", "openssl rand -hex 16", "its sidecars"}},
		{"server ID blank", map[string]string{"ECSMESH_AWSIAM_SERVER_ID": "  "}, []string{"ECSMESH_AWSIAM_SERVER_ID: must be set"}},
		{"server ID shared by every deployment", map[string]string{"ECSMESH_AWSIAM_SERVER_ID": "ecsmesh"}, []string{`ECSMESH_AWSIAM_SERVER_ID: must not be "ecsmesh"`, "replayed", "openssl rand -hex 16"}},
		{"server ID shared, other case", map[string]string{"ECSMESH_AWSIAM_SERVER_ID": " ECSMESH "}, []string{`ECSMESH_AWSIAM_SERVER_ID: must not be "ecsmesh"`}},
		{"record quota zero", map[string]string{"ECSMESH_ROUTE53_RECORD_QUOTA": "0"}, []string{"ECSMESH_ROUTE53_RECORD_QUOTA: must be at least 1"}},
		{"record quota not a number", map[string]string{"ECSMESH_ROUTE53_RECORD_QUOTA": "10k"}, []string{"ECSMESH_ROUTE53_RECORD_QUOTA: must be a whole number"}},
		{"every problem at once", map[string]string{"KUMA_DNS_SERVER_SERVICE_VIP_PORT": "80", "KUMA_STORE_TYPE": "etcd"}, []string{"KUMA_DNS_SERVER_SERVICE_VIP_PORT", "KUMA_STORE_TYPE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(Flags{}, env(tt.env))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestServerIDHasNoSharedDefault: with IAM login and no server ID given, the
// CP must not start with a value every deployment shares (a login signed
// for one deployment would replay at every other for 15 minutes).
func TestServerIDHasNoSharedDefault(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	c, err := Load(Flags{}, none)
	if err == nil {
		t.Fatalf("the CP starts with IAM login and server ID %q that nobody chose", c.Auth.ServerID)
	}
	if !strings.Contains(err.Error(), "ECSMESH_AWSIAM_SERVER_ID") {
		t.Errorf("error %q does not name ECSMESH_AWSIAM_SERVER_ID", err)
	}
	// Without IAM login there is no login to replay.
	if _, err := Load(Flags{}, env(map[string]string{
		"KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE": "none", "ECSMESH_AWSIAM_SERVER_ID": "",
		"ECSMESH_API_ADDR": "127.0.0.1:5678", "ECSMESH_XDS_ADDR": "127.0.0.1:5679",
	})); err != nil {
		t.Errorf("proxy type none needs no server ID: %v", err)
	}
	c, err = Load(Flags{}, env(map[string]string{"ECSMESH_AWSIAM_SERVER_ID": "prod-7c1e"}))
	if err != nil || c.Auth.ServerID != "prod-7c1e" {
		t.Errorf("a chosen server ID: %q, %v", c.Auth.ServerID, err)
	}
}

func TestLoadDefaultsAndOverrides(t *testing.T) {
	c, err := Load(Flags{}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.APIAddr != ":5678" || c.XDSAddr != ":5679" || c.AdminAddr != "127.0.0.1:5681" || c.DNS.VIPPort != 8080 || c.Store.Type != StoreSQLite || c.Route53.RefreshInterval.Seconds() != 10 || c.Route53.RecordQuota != 10000 {
		t.Errorf("defaults = %+v", c)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "cp.yaml")
	if err := os.WriteFile(file, []byte("apiAddr: 127.0.0.1:7000\ndns:\n  vipPort: 9000\nstore:\n  type: memory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Load(Flags{ConfigFile: file, AdminAddr: "127.0.0.1:7001"}, env(map[string]string{
		"KUMA_DNS_SERVER_SERVICE_VIP_PORT": "9001", "KMESH_AWSIAM_AUTHORIZEDACCOUNTIDS": "123456789012,210987654321",
		"KUMA_DNS_SERVER_CIDR": "127.9.0.0/16", "ECSMESH_ROUTE53_RECORD_QUOTA": "20000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.APIAddr != "127.0.0.1:7000" || c.AdminAddr != "127.0.0.1:7001" || c.DNS.VIPPort != 9001 || c.Store.Type != StoreMemory {
		t.Errorf("precedence wrong: %+v", c)
	}
	if len(c.Auth.AuthorizedAccountIDs) != 2 || c.DNS.ServiceCIDR != "127.9.0.0/16" || c.Route53.RecordQuota != 20000 {
		t.Errorf("accounts %v, service CIDR %s", c.Auth.AuthorizedAccountIDs, c.DNS.ServiceCIDR)
	}
	if err := os.WriteFile(file, []byte("apiAdr: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(Flags{ConfigFile: file}, env(nil)); err == nil || !strings.Contains(err.Error(), "apiAdr") {
		t.Errorf("unknown config key: err = %v", err)
	}
}

func TestPostgresDSNQuotes(t *testing.T) {
	c := Default()
	c.Store.Postgres.Password = `p'w d\`
	if got := c.PostgresDSN(); !strings.Contains(got, `password='p\'w d\\'`) {
		t.Errorf("DSN = %s", got)
	}
}

func TestCrossAccountRoleName(t *testing.T) {
	c, err := Load(Flags{}, env(map[string]string{"ECSMESH_AWSIAM_CROSS_ACCOUNT_ROLE_NAME": "ecsmesh-cp-reader"}))
	if err != nil || c.Auth.CrossAccountRoleName != "ecsmesh-cp-reader" {
		t.Fatalf("%+v %v", c.Auth, err)
	}
	_, err = Load(Flags{}, env(map[string]string{"ECSMESH_AWSIAM_CROSS_ACCOUNT_ROLE_NAME": "arn:aws:iam::123456789012:role/x"}))
	if err == nil || !strings.Contains(err.Error(), "ECSMESH_AWSIAM_CROSS_ACCOUNT_ROLE_NAME: must be an IAM role name") {
		t.Fatalf("an ARN was accepted: %v", err)
	}
}

func TestAdminTLS(t *testing.T) {
	for _, tc := range []struct {
		addr, cert string
		want       bool
	}{
		{"127.0.0.1:5681", "", false},
		{"localhost:5681", "", false},
		{"[::1]:5681", "", false},
		{"127.0.0.1:5681", "/etc/admin.pem", true},
		{"0.0.0.0:5681", "", true},
		{":5681", "", true},
		{"10.0.0.5:5681", "", true},
	} {
		c := Config{AdminAddr: tc.addr, AdminTLSCertFile: tc.cert}
		if got := c.AdminTLS(); got != tc.want {
			t.Errorf("AdminTLS(%s, cert %q) = %v, want %v", tc.addr, tc.cert, got, tc.want)
		}
	}
}

func TestLoginLimitsAndServiceWildcard(t *testing.T) {
	c, err := Load(Flags{}, env(map[string]string{"ECSMESH_AWSIAM_LOGINS_PER_SECOND": "2", "ECSMESH_AWSIAM_LOGIN_BURST": "9", "ECSMESH_AWSIAM_ALLOW_ANY_SERVICE_TAG": "true"}))
	if err != nil || c.Auth.LoginsPerSecond != 2 || c.Auth.LoginBurst != 9 || !c.Auth.AllowAnyServiceTag {
		t.Fatalf("%+v %v", c.Auth, err)
	}
	_, err = Load(Flags{}, env(map[string]string{"ECSMESH_AWSIAM_LOGINS_PER_SECOND": "-1", "ECSMESH_AWSIAM_LOGIN_BURST": "-3"}))
	if err == nil || !strings.Contains(err.Error(), "ECSMESH_AWSIAM_LOGINS_PER_SECOND: must be 0") || !strings.Contains(err.Error(), "ECSMESH_AWSIAM_LOGIN_BURST: must be 0") {
		t.Fatalf("negative limits: %v", err)
	}
}
