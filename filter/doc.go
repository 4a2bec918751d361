// Package filter is the data-plane core of ecsmesh: the per-request logic that
// runs inside Envoy, shared by the proxy-wasm plugin (package
// github.com/ecsmesh/ecsmesh/filter/proxywasm) and the Envoy Go filter
// (package github.com/ecsmesh/ecsmesh/filter/envoygo). It imports no
// proxy-wasm or Envoy package, so the control plane can import it to build
// the JSON configuration from the exported types.
//
// # Configuration
//
// The JSON configuration is the [Config] type (filter/README.md lists every
// field):
//
//	{"mode": "outbound",
//	 "routes": [{"vip": "127.1.0.5:8080", "hosts": ["redis.mesh.local"], "cluster": "redis",
//	             "spiffeId": "spiffe://default.mesh.local/workload/redis", "attachToken": true}],
//	 "identity": {"spiffeId": "spiffe://default.mesh.local/workload/web",
//	              "token": "<JWT-SVID>", "tokenExpiresAt": 1767225600},
//	 "inbound": {"service": "web",
//	             "permissions": [{"type": "Prefix", "value": "spiffe://default.mesh.local/", "action": "Allow"}],
//	             "default": "Deny", "audiences": ["default.mesh.local"], "jwks": {"keys": [...]}}}
//
// Among its fields:
//   - inbound.service: the local service name, used in the 403 body
//     "ecsmesh: <spiffe-id> may not call <service>"; required in inbound mode.
//   - inbound.audiences: the JWT-SVID audiences the inbound accepts (a token
//     must name at least one); default: identity.spiffeId, this sidecar's
//     own SPIFFE ID.
//
// [Parse] decodes and validates a configuration in one pure call and returns
// every problem with its JSON path (e.g. "routes[0].vip: must be ip:port").
// The result, [Compiled], is immutable apart from its internal caches and is
// safe for concurrent use (the Envoy Go filter calls it from many threads).
//
// # Per request
//
// An adapter fills a [Request] (destination.address and
// connection.uri_san_peer_certificate properties, :authority, the
// x-ecsmesh-identity header, the clock) and calls [Compiled.Decide]. It then
// either sends the local reply of the [Decision], or removes every header
// of [Compiled.StripNames] and sets the decision's headers. The outbound
// path allocates nothing in steady state.
//
// An adapter reads no more than the decision needs: outbound, a request
// whose destination.address matches a route is decided without :authority
// (Decide with an empty Authority gives the same route), so the adapter
// reads :authority only when the first decision is a 503 and decides again;
// inbound, x-ecsmesh-identity only when there is no peer certificate and
// [Compiled.NeedsIdentityToken].
package filter
