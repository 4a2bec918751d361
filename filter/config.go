package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Modes of the filter (Config.Mode).
const (
	// ModeOutbound routes requests the local app sends to loopback VIPs.
	ModeOutbound = "outbound"
	// ModeInbound authorizes requests arriving at the local service.
	ModeInbound = "inbound"
)

// Permission types (Permission.Type), as in Kuma's MeshTrafficPermission.
const (
	// MatchExact matches one SPIFFE ID exactly.
	MatchExact = "Exact"
	// MatchPrefix matches every SPIFFE ID that starts with the value. A value
	// naming only a trust domain ("spiffe://td") matches that trust domain only.
	MatchPrefix = "Prefix"
)

// Actions of a Permission and values of Inbound.Default.
const (
	// ActionAllow lets a matching caller in.
	ActionAllow = "Allow"
	// ActionDeny refuses a matching caller; a Deny always beats an Allow.
	ActionDeny = "Deny"
	// ActionAllowWithShadowDeny is Kuma's dry-run action; the filter treats it as Allow.
	ActionAllowWithShadowDeny = "AllowWithShadowDeny"
	// DefaultAllowMesh (Inbound.Default only) allows callers whose SPIFFE ID is
	// in the trust domain of Identity.SpiffeID and refuses everyone else.
	DefaultAllowMesh = "AllowMesh"
)

// Config is the JSON configuration of the filter (filter/README.md). The control plane
// builds it and delivers it as the plugin configuration (Wasm form) or the
// filter's plugin_config (Go form).
type Config struct {
	// Mode is "outbound" or "inbound" (required).
	Mode string `json:"mode"`
	// Routes are the services reachable from this sidecar (outbound mode).
	Routes []Route `json:"routes,omitempty"`
	// Identity is this sidecar's own SPIFFE identity and JWT-SVID.
	Identity *Identity `json:"identity,omitempty"`
	// Inbound is the authorization policy of the local service (inbound mode).
	Inbound *Inbound `json:"inbound,omitempty"`
}

// Route is one destination service in outbound mode.
type Route struct {
	// VIP is the loopback address the app dials, "ip:port" (or "ip" for any
	// port), matched against the destination.address property.
	VIP string `json:"vip,omitempty"`
	// Hosts are the names of the service, matched case-insensitively against
	// :authority with or without its port. An entry with a port ("h:8080")
	// matches that exact authority only.
	Hosts []string `json:"hosts,omitempty"`
	// Cluster is the Envoy cluster, set as x-ecsmesh-cluster (required).
	Cluster string `json:"cluster"`
	// SpiffeID is the identity of the destination service (optional).
	SpiffeID string `json:"spiffeId,omitempty"`
	// AttachToken sends this sidecar's JWT-SVID as x-ecsmesh-identity: the
	// route's Token, or, when the route has none, Identity.Token.
	AttachToken bool `json:"attachToken,omitempty"`
	// Token is this sidecar's JWT-SVID for this destination only (its aud
	// is the destination's SPIFFE ID), so that the callee cannot replay it
	// to another service. Requires AttachToken.
	Token string `json:"token,omitempty"`
	// TokenExpiresAt is Token's expiry in Unix seconds; when zero, the
	// token's exp claim is used. An expired token is never sent (and
	// Identity.Token is not sent in its place).
	TokenExpiresAt int64 `json:"tokenExpiresAt,omitempty"`
}

// Identity is this sidecar's identity.
type Identity struct {
	// SpiffeID is this sidecar's SPIFFE ID.
	SpiffeID string `json:"spiffeId"`
	// Token is this sidecar's JWT-SVID, attached on routes with AttachToken
	// that have no Token of their own.
	Token string `json:"token,omitempty"`
	// TokenExpiresAt is the token's expiry in Unix seconds; when zero, the
	// token's exp claim is used. An expired token is never sent.
	TokenExpiresAt int64 `json:"tokenExpiresAt,omitempty"`
}

// Inbound is the authorization policy of the local service.
type Inbound struct {
	// Service is the local service name, used in the 403 body (required in
	// inbound mode). An ecsmesh extension of the filter config (see filter/README.md).
	Service string `json:"service,omitempty"`
	// Permissions are checked in any order: a matching Deny beats a matching
	// Allow; without a match, Default applies.
	Permissions []Permission `json:"permissions,omitempty"`
	// Default is "Deny" (when empty), "Allow" or "AllowMesh".
	Default string `json:"default,omitempty"`
	// JWKS is the JSON Web Key Set ({"keys": [...]}) whose ES256 keys sign the
	// JWT-SVIDs accepted in x-ecsmesh-identity when the peer has no mTLS
	// certificate. Without it, such requests are refused.
	JWKS json.RawMessage `json:"jwks,omitempty"`
	// Audiences are the accepted JWT-SVID audiences (any one must match).
	// Default: Identity.SpiffeID, this sidecar's own SPIFFE ID, so that a
	// token minted for another service is refused. An ecsmesh extension of the filter config (see filter/README.md).
	Audiences []string `json:"audiences,omitempty"`
	// JWTIssuer, when set, is the only accepted `iss` of a JWT-SVID (a
	// token without iss is refused). The control plane sets it to the
	// issuer it signs with.
	JWTIssuer string `json:"jwtIssuer,omitempty"`
}

// Permission is one rule of Inbound.Permissions.
type Permission struct {
	// Type is "Exact" or "Prefix".
	Type string `json:"type"`
	// Value is a SPIFFE ID (Exact) or a SPIFFE ID prefix (Prefix).
	Value string `json:"value"`
	// Action is "Allow" or "Deny" ("AllowWithShadowDeny" counts as Allow).
	Action string `json:"action"`
	// Rules, when set, limit the permission to the requests one of them
	// matches (by method and path); other requests of the caller are
	// decided as if the permission were absent.
	Rules []PermissionRule `json:"rules,omitempty"`
}

// Problem is one violation found in a configuration.
type Problem struct {
	// Path is the JSON path of the offending value, e.g. "routes[0].vip".
	Path string
	// Message says what is wrong.
	Message string
}

// ConfigError lists every problem of a configuration.
type ConfigError struct {
	// Problems are in document order.
	Problems []Problem
}

// Error renders all problems on one line.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("filter: invalid config: ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		if p.Path != "" {
			b.WriteString(p.Path)
			b.WriteString(": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// problems collects violations while validating.
type problems struct{ list []Problem }

func (p *problems) add(path, format string, args ...any) {
	p.list = append(p.list, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// Parse decodes and validates a JSON configuration and compiles it for the
// request path. It is pure: the same input gives the same result. On invalid
// input it returns a *ConfigError listing every problem with its JSON path.
func Parse(data []byte) (*Compiled, error) {
	cfg, err := Decode(data)
	if err != nil {
		return nil, err
	}
	return Compile(cfg)
}

// Decode decodes a JSON configuration strictly (unknown fields are problems)
// without validating its values.
func Decode(data []byte) (*Config, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, &ConfigError{Problems: []Problem{{Message: "configuration is empty"}}}
	}
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, &ConfigError{Problems: []Problem{decodeProblem(err)}}
	}
	var generic any
	if err := json.Unmarshal(data, &generic); err != nil {
		return nil, &ConfigError{Problems: []Problem{decodeProblem(err)}}
	}
	var p problems
	checkUnknown(&p, "", generic, configShape)
	if len(p.list) > 0 {
		slices.SortStableFunc(p.list, func(a, b Problem) int { return strings.Compare(a.Path, b.Path) })
		return nil, &ConfigError{Problems: p.list}
	}
	return &cfg, nil
}

// decodeProblem turns a json error into a Problem with the best path known.
func decodeProblem(err error) Problem {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return Problem{Path: te.Field, Message: fmt.Sprintf("must be %s, not %s", jsonKind(te.Type.Kind().String()), te.Value)}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return Problem{Message: fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)}
	}
	return Problem{Message: fmt.Sprintf("invalid JSON: %v", err)}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "slice":
		return "an array"
	case "struct", "ptr", "map":
		return "an object"
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	default:
		return "a number"
	}
}

// shape describes the known keys of a JSON object: a nil value means a leaf,
// a shape means a nested object, and arrayOf wraps the shape of array items.
type shape map[string]any

type arrayOf struct{ item shape }

var configShape = shape{
	"mode": nil,
	"routes": arrayOf{shape{
		"vip": nil, "hosts": nil, "cluster": nil, "spiffeId": nil, "attachToken": nil,
		"token": nil, "tokenExpiresAt": nil,
	}},
	"identity": shape{"spiffeId": nil, "token": nil, "tokenExpiresAt": nil},
	"inbound": shape{
		"service": nil, "default": nil, "jwks": nil, "audiences": nil, "jwtIssuer": nil,
		"permissions": arrayOf{shape{"type": nil, "value": nil, "action": nil, "rules": arrayOf{shape{
			"match": shape{"methods": nil, "paths": arrayOf{shape{"type": nil, "value": nil}}},
		}}}},
	},
}

// checkUnknown reports every key of v that s does not know.
func checkUnknown(p *problems, path string, v any, s shape) {
	obj, ok := v.(map[string]any)
	if !ok {
		return
	}
	for key, val := range obj {
		sub, known := s[key]
		if !known {
			p.add(join(path, key), "unknown field")
			continue
		}
		switch sub := sub.(type) {
		case shape:
			checkUnknown(p, join(path, key), val, sub)
		case arrayOf:
			items, _ := val.([]any)
			for i, item := range items {
				checkUnknown(p, fmt.Sprintf("%s[%d]", join(path, key), i), item, sub.item)
			}
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
