package metrics

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
)

// bodyTransport answers every request with body.
type bodyTransport struct{ body string }

func (b bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(b.body)), Header: http.Header{}, Request: r}, nil
}

// FuzzScrape: whatever an app (or Envoy) answers, the merged exposition
// parses, and every series carries the Dataplane's own mesh, service and
// workload: a hostile app cannot pass series off as another service's.
func FuzzScrape(f *testing.F) {
	f.Add(appStats)
	f.Add(envoyStats)
	f.Add("x{mesh=\"evil\",service=\"db\",exported_mesh=\"a\"} 1\nx{mesh=\"evil2\"} 2\nx{exported_mesh=\"evil\",mesh=\"x\"} 3\n")
	f.Add("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n")
	f.Add("a 1\na 1\n# HELP a \\n evil\n")
	f.Fuzz(func(t *testing.T, body string) {
		reg := prometheus.NewRegistry()
		s, err := New(Config{Gatherer: reg, Registerer: reg, AdminPort: func() int { return 9901 }, Client: &http.Client{Transport: bodyTransport{body}}})
		if err != nil {
			t.Fatal(err)
		}
		v, err := compile(dpapi.Metrics{Port: 5670, Path: "/metrics", AllEnvoy: true,
			Applications: []dpapi.MetricsApplication{{Address: "127.0.0.1", Port: 8888, Path: "/m"}},
			Labels:       dpapi.MetricsLabels{Mesh: "default", Service: "web", Workload: "web"}})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		s.Scrape(context.Background(), v, &out)
		p := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatalf("the merged exposition does not parse: %v\n%s", err, out.String())
		}
		for name, fam := range fams {
			for _, m := range fam.Metric {
				got := map[string]string{}
				for _, l := range m.Label {
					got[l.GetName()] = l.GetValue()
				}
				if got["mesh"] != "default" || got["service"] != "web" || got["workload"] != "web" {
					t.Fatalf("series of %s labelled %v", name, got)
				}
			}
		}
	})
}
