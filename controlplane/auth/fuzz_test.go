package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/ecsmesh/ecsmesh/bootstrap/awslogin"
	"github.com/ecsmesh/ecsmesh/controlplane/auth"
)

func seedToken(f *testing.F, body string) string {
	req, _ := http.NewRequest(http.MethodPost, "https://sts.us-east-1.amazonaws.com/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set(auth.ServerIDHeader, serverID)
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: "ASIAEXAMPLEEXAMPLE", SecretAccessKey: "secret", SessionToken: "token"}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "sts", region, time.Now()); err != nil {
		f.Fatal(err)
	}
	tok, err := awslogin.Encode(req, []byte(body))
	if err != nil {
		f.Fatal(err)
	}
	return tok
}

func FuzzDecodeLoginToken(f *testing.F) {
	f.Add(seedToken(f, goodBody))
	f.Add(seedToken(f, "Action=GetRole"))
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"iam_http_request_method":"POST","iam_request_url":"aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8=","iam_request_headers":"e30=","iam_request_body":""}`)))
	f.Add("")
	f.Add("e30=")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := auth.DecodeLoginToken(s)
		if err != nil {
			return
		}
		if len(s) > auth.MaxLoginTokenSize {
			t.Fatalf("accepted %d bytes", len(s))
		}
		if tok.URL == nil || tok.Header.Get("Host") != "" {
			t.Fatalf("decoded %+v", tok)
		}
	})
}
