package adsclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// resourceName reads the name of a packed resource.
func resourceName(a *anypb.Any) (string, error) {
	m, err := a.UnmarshalNew()
	if err != nil {
		return "", fmt.Errorf("adsclient: unpacking %s: %w", a.GetTypeUrl(), err)
	}
	r := m.ProtoReflect()
	for _, f := range []string{"name", "cluster_name"} {
		if fd := r.Descriptor().Fields().ByName(protoreflect.Name(f)); fd != nil {
			return r.Get(fd).String(), nil
		}
	}
	return "", fmt.Errorf("adsclient: %s has no name", a.GetTypeUrl())
}

// namedTypes are subscribed by name, from what clusters and listeners
// refer to; clusters and listeners are wildcard.
var namedTypes = []string{resourcev3.EndpointType, resourcev3.SecretType, resourcev3.ExtensionConfigType}

func (c *Client) runSotw(ctx context.Context, ads discovery.AggregatedDiscoveryServiceClient, node *corev3.Node) error {
	st, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		return fmt.Errorf("adsclient: opening stream: %w", err)
	}
	c.newStream()
	nonces := map[string]string{}
	for i, t := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
		req := &discovery.DiscoveryRequest{TypeUrl: t}
		if i == 0 {
			req.Node = node
		}
		if err := st.Send(req); err != nil {
			if _, rerr := st.Recv(); rerr != nil {
				err = rerr
			}
			return fmt.Errorf("adsclient: subscribing: %w", err)
		}
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return fmt.Errorf("adsclient: stream: %w", err)
		}
		typ := resp.GetTypeUrl()
		nonces[typ] = resp.GetNonce()
		got := map[string]*anypb.Any{}
		for _, a := range resp.GetResources() {
			name, err := resourceName(a)
			if err != nil {
				return err
			}
			got[name] = a
		}
		c.mu.Lock()
		names := c.sentNames[typ]
		c.mu.Unlock()
		if verr := c.validate(typ, got); verr != nil {
			c.mu.Lock()
			c.nacks++
			c.lastNACK = verr
			ver := c.versions[typ]
			c.notify()
			c.mu.Unlock()
			c.log.Warn("adsclient: NACK", "type", typ, "error", verr)
			if err := st.Send(&discovery.DiscoveryRequest{TypeUrl: typ, VersionInfo: ver, ResponseNonce: resp.GetNonce(), ResourceNames: names, ErrorDetail: nackStatus(verr)}); err != nil {
				return statusOf(err, func() error { _, err := st.Recv(); return err })
			}
			continue
		}
		c.mu.Lock()
		if typ == resourcev3.ClusterType || typ == resourcev3.ListenerType {
			c.resources[typ] = got
		} else {
			for n, a := range got {
				c.resources[typ][n] = a
			}
		}
		c.versions[typ] = resp.GetVersionInfo()
		c.acks++
		c.mu.Unlock()
		if err := st.Send(&discovery.DiscoveryRequest{TypeUrl: typ, VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce(), ResourceNames: names}); err != nil {
			return statusOf(err, func() error { _, err := st.Recv(); return err })
		}
		if typ == resourcev3.ClusterType || typ == resourcev3.ListenerType {
			want := c.wanted()
			for _, t := range namedTypes {
				ns := sortedNames(want[t])
				c.mu.Lock()
				same := slices.Equal(ns, c.sentNames[t])
				if !same {
					c.sentNames[t] = ns
					for n := range c.resources[t] {
						if !want[t][n] {
							delete(c.resources[t], n)
						}
					}
				}
				ver := c.versions[t]
				c.mu.Unlock()
				if same {
					continue
				}
				if err := st.Send(&discovery.DiscoveryRequest{TypeUrl: t, VersionInfo: ver, ResponseNonce: nonces[t], ResourceNames: ns}); err != nil {
					return statusOf(err, func() error { _, err := st.Recv(); return err })
				}
			}
		}
		c.mu.Lock()
		c.notify()
		c.mu.Unlock()
	}
}

func (c *Client) runDelta(ctx context.Context, ads discovery.AggregatedDiscoveryServiceClient, node *corev3.Node) error {
	st, err := ads.DeltaAggregatedResources(ctx)
	if err != nil {
		return fmt.Errorf("adsclient: opening delta stream: %w", err)
	}
	c.newStream()
	for i, t := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
		req := &discovery.DeltaDiscoveryRequest{TypeUrl: t, ResourceNamesSubscribe: []string{"*"}}
		if i == 0 {
			req.Node = node
		}
		if err := st.Send(req); err != nil {
			if _, rerr := st.Recv(); rerr != nil {
				err = rerr
			}
			return fmt.Errorf("adsclient: subscribing: %w", err)
		}
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return fmt.Errorf("adsclient: delta stream: %w", err)
		}
		typ := resp.GetTypeUrl()
		got := map[string]*anypb.Any{}
		for _, r := range resp.GetResources() {
			got[r.GetName()] = r.GetResource()
		}
		if verr := c.validate(typ, got); verr != nil {
			c.mu.Lock()
			c.nacks++
			c.lastNACK = verr
			c.notify()
			c.mu.Unlock()
			if err := st.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: resp.GetNonce(), ErrorDetail: nackStatus(verr)}); err != nil {
				return statusOf(err, func() error { _, err := st.Recv(); return err })
			}
			continue
		}
		c.mu.Lock()
		for n, a := range got {
			c.resources[typ][n] = a
		}
		for _, n := range resp.GetRemovedResources() {
			delete(c.resources[typ], n)
		}
		c.acks++
		c.mu.Unlock()
		if err := st.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: resp.GetNonce()}); err != nil {
			return statusOf(err, func() error { _, err := st.Recv(); return err })
		}
		if typ == resourcev3.ClusterType || typ == resourcev3.ListenerType {
			want := c.wanted()
			for _, t := range namedTypes {
				c.mu.Lock()
				had := map[string]bool{}
				for _, n := range c.sentNames[t] {
					had[n] = true
				}
				var sub, unsub []string
				for _, n := range sortedNames(want[t]) {
					if !had[n] {
						sub = append(sub, n)
					}
				}
				for _, n := range c.sentNames[t] {
					if !want[t][n] {
						unsub = append(unsub, n)
						delete(c.resources[t], n)
					}
				}
				c.sentNames[t] = sortedNames(want[t])
				c.mu.Unlock()
				if len(sub)+len(unsub) == 0 {
					continue
				}
				if err := st.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: t, ResourceNamesSubscribe: sub, ResourceNamesUnsubscribe: unsub}); err != nil {
					return statusOf(err, func() error { _, err := st.Recv(); return err })
				}
			}
		}
		c.mu.Lock()
		c.notify()
		c.mu.Unlock()
	}
}

// newStream forgets what the previous stream subscribed to: like Envoy, a
// new stream subscribes to every named resource again (a reconnected
// server, or another replica, knows nothing of the old stream).
func (c *Client) newStream() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sentNames = map[string][]string{}
}

// statusOf returns the stream's status when a Send failed because the
// server ended the stream (gRPC reports that as io.EOF; the status comes
// from Recv).
func statusOf(err error, recv func() error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	for {
		if rerr := recv(); rerr != nil {
			return rerr
		}
	}
}
