package sigv4check

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
)

// AsError returns err as an *Error; anything else becomes a 500
// InternalFailure.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Status: http.StatusInternalServerError, Code: "InternalFailure", Message: "internal failure"}
}

type xmlError struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr,omitempty"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

// WriteXML writes err in the AWS query / REST-XML error shape
//
//	<ErrorResponse xmlns="..."><Error><Type>Sender</Type><Code>..</Code>
//	<Message>..</Message></Error><RequestId>..</RequestId></ErrorResponse>
//
// xmlns is the service namespace (e.g.
// "https://sts.amazonaws.com/doc/2011-06-15/"); empty omits it.
func WriteXML(w http.ResponseWriter, err error, xmlns, requestID string) {
	e := AsError(err)
	typ := "Receiver"
	if e.Sender {
		typ = "Sender"
	}
	b, _ := xml.Marshal(xmlError{Xmlns: xmlns, Type: typ, Code: e.Code, Message: e.Message, RequestID: requestID})
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", requestID)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(b)
}

// WriteJSON writes err in the AWS JSON 1.0/1.1 error shape: header
// X-Amzn-Errortype and body {"__type": code, "message": ...}.
func WriteJSON(w http.ResponseWriter, err error, requestID string) {
	e := AsError(err)
	b, _ := json.Marshal(map[string]string{"__type": e.Code, "message": e.Message})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", e.Code)
	w.Header().Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(e.Status)
	_, _ = w.Write(b)
}

// RequestID returns a fresh AWS-style request ID.
func RequestID() string {
	s := randomString(32)
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}
