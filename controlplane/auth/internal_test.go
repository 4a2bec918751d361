package auth

import (
	"context"
	"testing"
)

func TestSTSHostAllowed(t *testing.T) {
	v := &Verifier{}
	tests := []struct {
		region, host string
		want         bool
	}{
		{"us-east-1", "sts.us-east-1.amazonaws.com", true},
		{"us-east-1", "sts-fips.us-east-1.amazonaws.com", true},
		{"eu-west-1", "sts.eu-west-1.amazonaws.com", true},
		{"cn-north-1", "sts.cn-north-1.amazonaws.com.cn", true},
		{"us-gov-west-1", "sts.us-gov-west-1.amazonaws.com", true},
		{"us-east-1", "sts.amazonaws.com", false},
		{"us-east-1", "sts.eu-west-1.amazonaws.com", false},
		{"us-east-1", "sts.us-east-1.amazonaws.com.evil.com", false},
		{"us-east-1", "sts.us-east-1.amazonaws.com:443", false},
	}
	for _, tt := range tests {
		got, err := v.stsHostAllowed(context.Background(), tt.region, tt.host)
		if err != nil || got != tt.want {
			t.Errorf("%s %s = %v, %v; want %v", tt.region, tt.host, got, err, tt.want)
		}
	}
}

func TestParseCallerIdentity(t *testing.T) {
	ok := `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>a</Arn><UserId>u</UserId><Account>1</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`
	tests := []struct {
		name, ct, body string
		ok             bool
	}{
		{"ok", "text/xml", ok, true},
		{"ok charset", "text/xml; charset=utf-8", ok, true},
		{"json type", "application/json", ok, false},
		{"wrong root", "text/xml", `<Other>` + ok + `</Other>`, false},
		{"two arns", "text/xml", `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>a</Arn><Arn>b</Arn><UserId>u</UserId><Account>1</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`, false},
		{"empty account", "text/xml", `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>a</Arn><UserId>u</UserId><Account></Account></GetCallerIdentityResult></GetCallerIdentityResponse>`, false},
		{"two roots", "text/xml", ok + ok, false},
	}
	for _, tt := range tests {
		_, err := parseCallerIdentity(tt.ct, []byte(tt.body))
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}

func FuzzParseCallerIdentity(f *testing.F) {
	f.Add(`<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:sts::111122223333:assumed-role/r/s</Arn><UserId>AROAAAAAAAAAAAAA:s</UserId><Account>111122223333</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`)
	f.Fuzz(func(t *testing.T, body string) {
		id, err := parseCallerIdentity("text/xml", []byte(body))
		if err == nil {
			_, _ = parseAssumedRole(id)
		}
	})
}
