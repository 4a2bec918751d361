package awslogin_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/ecsmesh/ecsmesh/bootstrap/awslogin"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeaws"
)

func TestNewLoginTokenIsSignedAndUnsent(t *testing.T) {
	c := fakeaws.New(nil)
	srv := httptest.NewServer(c)
	defer srv.Close()
	c.IAM.PutRole("111122223333", "web", nil)
	cred, err := c.STS.AssumeRole("111122223333", "web", "task1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ENDPOINT_URL_STS", srv.URL)
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("eu-west-1"), config.WithCredentialsProvider(cred))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := awslogin.NewLoginToken(context.Background(), cfg, "cp-1")
	if err != nil {
		t.Fatal(err)
	}
	if c.STS.Calls() != 0 {
		t.Fatalf("the login request reached STS")
	}
	raw, _ := base64.StdEncoding.DecodeString(tok)
	var lt awslogin.Token
	if err := json.Unmarshal(raw, &lt); err != nil {
		t.Fatal(err)
	}
	u, _ := base64.StdEncoding.DecodeString(lt.URL)
	hb, _ := base64.StdEncoding.DecodeString(lt.Headers)
	body, _ := base64.StdEncoding.DecodeString(lt.Body)
	var h http.Header
	if err := json.Unmarshal(hb, &h); err != nil {
		t.Fatal(err)
	}
	if lt.Method != "POST" || string(u) != srv.URL+"/" || h.Get("X-Ecsmesh-Server-Id") != "cp-1" {
		t.Fatalf("token = %s %s %v", lt.Method, u, h)
	}
	if !strings.Contains(h.Get("Authorization"), "x-ecsmesh-server-id") || !strings.Contains(h.Get("Authorization"), "/eu-west-1/sts/") {
		t.Fatalf("authorization = %s", h.Get("Authorization"))
	}
	if string(body) != "Action=GetCallerIdentity&Version=2011-06-15" {
		t.Fatalf("body = %q", body)
	}
	// The captured request is valid: sending it as is succeeds.
	req, _ := http.NewRequest("POST", string(u), bytes.NewReader(body))
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(rb), "assumed-role/web/task1") {
		t.Fatalf("%d %s", resp.StatusCode, rb)
	}
}

func TestNewLoginTokenNeedsRegion(t *testing.T) {
	if _, err := awslogin.NewLoginToken(context.Background(), aws.Config{}, "cp"); err == nil {
		t.Fatal("no error without a region")
	}
}
