package fakeroute53

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ecsmesh/ecsmesh/internal/test/sigv4check"
)

// Namespace is Route53's XML namespace.
const Namespace = "https://route53.amazonaws.com/doc/2013-04-01/"

const maxBody = 4 << 20

type xmlRecordSet struct {
	Name            string      `xml:"Name"`
	Type            string      `xml:"Type"`
	SetIdentifier   string      `xml:"SetIdentifier,omitempty"`
	Weight          *int64      `xml:"Weight,omitempty"`
	TTL             *int64      `xml:"TTL,omitempty"`
	ResourceRecords *[]xmlValue `xml:"ResourceRecords>ResourceRecord,omitempty"`
	AliasTarget     *xmlAlias   `xml:"AliasTarget,omitempty"`
}

type xmlValue struct {
	Value string `xml:"Value"`
}

type xmlAlias struct {
	HostedZoneID         string `xml:"HostedZoneId"`
	DNSName              string `xml:"DNSName"`
	EvaluateTargetHealth bool   `xml:"EvaluateTargetHealth"`
}

type xmlChangeRequest struct {
	XMLName xml.Name `xml:"ChangeResourceRecordSetsRequest"`
	Changes []struct {
		Action string       `xml:"Action"`
		Set    xmlRecordSet `xml:"ResourceRecordSet"`
	} `xml:"ChangeBatch>Changes>Change"`
}

type xmlChangeInfo struct {
	ID          string `xml:"Id"`
	Status      string `xml:"Status"`
	SubmittedAt string `xml:"SubmittedAt"`
}

func toXML(r RecordSet) xmlRecordSet {
	x := xmlRecordSet{Name: r.Name, Type: r.Type, SetIdentifier: r.SetIdentifier, Weight: r.Weight, TTL: r.TTL}
	if len(r.Values) > 0 {
		vs := make([]xmlValue, len(r.Values))
		for i, v := range r.Values {
			vs[i] = xmlValue{v}
		}
		x.ResourceRecords = &vs
	}
	if r.Alias != nil {
		x.AliasTarget = &xmlAlias{r.Alias.HostedZoneID, r.Alias.DNSName, r.Alias.EvaluateTargetHealth}
	}
	return x
}

func fromXML(x xmlRecordSet) RecordSet {
	r := RecordSet{Name: x.Name, Type: x.Type, SetIdentifier: x.SetIdentifier, Weight: x.Weight, TTL: x.TTL}
	if x.ResourceRecords != nil {
		for _, v := range *x.ResourceRecords {
			r.Values = append(r.Values, v.Value)
		}
	}
	if x.AliasTarget != nil {
		r.Alias = &Alias{x.AliasTarget.HostedZoneID, x.AliasTarget.DNSName, x.AliasTarget.EvaluateTargetHealth}
	}
	return r
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := sigv4check.RequestID()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		writeErr(w, sigv4check.Errorf(http.StatusBadRequest, "InvalidInput", "request body unreadable or too large"), reqID)
		return
	}
	if _, err := s.verifier.Verify(r, body, "route53"); err != nil {
		writeErr(w, err, reqID)
		return
	}
	action, id := route(r)
	if action == "" {
		writeErr(w, sigv4check.Errorf(http.StatusNotFound, "UnknownOperationException", "the fake does not implement %s %s", r.Method, r.URL.Path), reqID)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[action]++
	if !s.allow() {
		s.throttled++
		writeErr(w, sigv4check.Errorf(http.StatusBadRequest, "Throttling", "Rate exceeded"), reqID)
		return
	}
	switch action {
	case ActionGetHostedZone:
		s.getHostedZone(w, id, reqID)
	case ActionListResourceRecordSets:
		s.list(w, r, id, reqID)
	case ActionChangeResourceRecordSets:
		s.change(w, body, id, reqID)
	case ActionGetChange:
		s.getChange(w, id, reqID)
	}
}

func route(r *http.Request) (action, id string) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	rest, ok := strings.CutPrefix(p, "/2013-04-01/")
	if !ok {
		return "", ""
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 2 && parts[0] == "hostedzone" && r.Method == http.MethodGet:
		return ActionGetHostedZone, parts[1]
	case len(parts) == 3 && parts[0] == "hostedzone" && parts[2] == "rrset" && r.Method == http.MethodGet:
		return ActionListResourceRecordSets, parts[1]
	case len(parts) == 3 && parts[0] == "hostedzone" && parts[2] == "rrset" && r.Method == http.MethodPost:
		return ActionChangeResourceRecordSets, parts[1]
	case len(parts) == 2 && parts[0] == "change" && r.Method == http.MethodGet:
		return ActionGetChange, parts[1]
	}
	return "", ""
}

func writeErr(w http.ResponseWriter, err error, reqID string) {
	sigv4check.WriteXML(w, err, Namespace, reqID)
}

func writeXML(w http.ResponseWriter, v any, reqID string) {
	b, err := xml.Marshal(v)
	if err != nil {
		writeErr(w, err, reqID)
		return
	}
	b = append([]byte(xml.Header), b...)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", reqID)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (s *Server) zoneOr404(w http.ResponseWriter, id, reqID string) *zone {
	z, ok := s.zones[id]
	if !ok {
		writeErr(w, sigv4check.Errorf(http.StatusNotFound, "NoSuchHostedZone", "No hosted zone found with ID: %s", id), reqID)
	}
	return z
}

func (s *Server) getHostedZone(w http.ResponseWriter, id, reqID string) {
	z := s.zoneOr404(w, id, reqID)
	if z == nil {
		return
	}
	type vpc struct {
		Region string `xml:"VPCRegion"`
		ID     string `xml:"VPCId"`
	}
	out := struct {
		XMLName xml.Name `xml:"GetHostedZoneResponse"`
		Xmlns   string   `xml:"xmlns,attr"`
		ID      string   `xml:"HostedZone>Id"`
		Name    string   `xml:"HostedZone>Name"`
		Ref     string   `xml:"HostedZone>CallerReference"`
		Private bool     `xml:"HostedZone>Config>PrivateZone"`
		Count   int      `xml:"HostedZone>ResourceRecordSetCount"`
		VPCs    []vpc    `xml:"VPCs>VPC,omitempty"`
	}{Xmlns: Namespace, ID: "/hostedzone/" + z.id, Name: z.name, Ref: z.ref, Private: z.private, Count: len(z.sets)}
	if z.private {
		out.VPCs = []vpc{{"us-east-1", "vpc-0fake0000000000001"}}
	}
	writeXML(w, out, reqID)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, id, reqID string) {
	z := s.zoneOr404(w, id, reqID)
	if z == nil {
		return
	}
	q := r.URL.Query()
	max := 300
	if v := q.Get("maxitems"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeErr(w, sigv4check.Errorf(http.StatusBadRequest, "InvalidInput", "maxitems must be a positive integer"), reqID)
			return
		}
		max = min(n, 300)
	}
	start := RecordSet{Name: fqdn(q.Get("name")), Type: q.Get("type"), SetIdentifier: q.Get("identifier")}
	if q.Get("type") != "" && q.Get("name") == "" {
		writeErr(w, sigv4check.Errorf(http.StatusBadRequest, "InvalidInput", "type requires name"), reqID)
		return
	}
	all := z.sorted()
	i := 0
	if q.Get("name") != "" {
		for i < len(all) && less(all[i], start) {
			i++
		}
	}
	type resp struct {
		XMLName   xml.Name       `xml:"ListResourceRecordSetsResponse"`
		Xmlns     string         `xml:"xmlns,attr"`
		Sets      []xmlRecordSet `xml:"ResourceRecordSets>ResourceRecordSet"`
		Truncated bool           `xml:"IsTruncated"`
		NextName  string         `xml:"NextRecordName,omitempty"`
		NextType  string         `xml:"NextRecordType,omitempty"`
		NextID    string         `xml:"NextRecordIdentifier,omitempty"`
		MaxItems  string         `xml:"MaxItems"`
	}
	out := resp{Xmlns: Namespace, MaxItems: strconv.Itoa(max), Sets: []xmlRecordSet{}}
	end := min(i+max, len(all))
	for _, rs := range all[i:end] {
		out.Sets = append(out.Sets, toXML(rs))
	}
	if end < len(all) {
		n := all[end]
		out.Truncated, out.NextName, out.NextType, out.NextID = true, n.Name, n.Type, n.SetIdentifier
	}
	writeXML(w, out, reqID)
}

func (s *Server) change(w http.ResponseWriter, body []byte, id, reqID string) {
	z := s.zoneOr404(w, id, reqID)
	if z == nil {
		return
	}
	if s.prior > 0 {
		s.prior--
		writeErr(w, sigv4check.Errorf(http.StatusBadRequest, "PriorRequestNotComplete", "The request was rejected because Route 53 was still processing a prior request."), reqID)
		return
	}
	var req xmlChangeRequest
	if err := xml.Unmarshal(body, &req); err != nil {
		writeErr(w, sigv4check.Errorf(http.StatusBadRequest, "InvalidInput", "malformed ChangeResourceRecordSetsRequest: %v", err), reqID)
		return
	}
	if len(req.Changes) == 0 {
		writeErr(w, sigv4check.Errorf(http.StatusBadRequest, "InvalidInput", "1 validation error detected: Value null at 'changeBatch.changes' failed to satisfy constraint: Member must not be null"), reqID)
		return
	}
	changes := make([]Change, len(req.Changes))
	for i, c := range req.Changes {
		changes[i] = Change{Action: c.Action, Set: fromXML(c.Set)}
	}
	if msgs := z.apply(changes); msgs != nil {
		s.rejected++
		writeInvalidChangeBatch(w, msgs, reqID)
		return
	}
	for _, c := range changes {
		s.applied[c.Action]++
	}
	s.nextID++
	cid := fmt.Sprintf("C%020d", s.nextID)
	now := s.now().UTC()
	s.changes[cid] = now
	out := struct {
		XMLName xml.Name      `xml:"ChangeResourceRecordSetsResponse"`
		Xmlns   string        `xml:"xmlns,attr"`
		Info    xmlChangeInfo `xml:"ChangeInfo"`
	}{Xmlns: Namespace, Info: s.info(cid, now)}
	writeXML(w, out, reqID)
}

func (s *Server) info(cid string, at time.Time) xmlChangeInfo {
	status := "PENDING"
	if !s.now().Before(at.Add(s.syncDelay)) {
		status = "INSYNC"
	}
	return xmlChangeInfo{ID: "/change/" + cid, Status: status, SubmittedAt: at.Format(time.RFC3339)}
}

func (s *Server) getChange(w http.ResponseWriter, id, reqID string) {
	at, ok := s.changes[id]
	if !ok {
		writeErr(w, sigv4check.Errorf(http.StatusNotFound, "NoSuchChange", "A change with the specified change ID does not exist: %s", id), reqID)
		return
	}
	out := struct {
		XMLName xml.Name      `xml:"GetChangeResponse"`
		Xmlns   string        `xml:"xmlns,attr"`
		Info    xmlChangeInfo `xml:"ChangeInfo"`
	}{Xmlns: Namespace, Info: s.info(id, at)}
	writeXML(w, out, reqID)
}

// writeInvalidChangeBatch writes Route53's own error shape for a refused
// batch, which the SDK decodes into types.InvalidChangeBatch.
func writeInvalidChangeBatch(w http.ResponseWriter, msgs []string, reqID string) {
	out := struct {
		XMLName   xml.Name `xml:"InvalidChangeBatch"`
		Xmlns     string   `xml:"xmlns,attr"`
		Messages  []string `xml:"Messages>Message"`
		RequestID string   `xml:"RequestId"`
	}{Xmlns: Namespace, Messages: msgs, RequestID: reqID}
	b, _ := xml.Marshal(out)
	b = append([]byte(xml.Header), b...)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", reqID)
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(b)
}
