// Command publish submits one job to troupe and waits for its end, with
// nats.go (Debian: golang-github-nats-io-go-nats-dev).
//
//	publish PIPELINE KEY PAYLOAD_JSON
//
// Exit 0: the job succeeded; 1: it ended otherwise; 2: the submission was
// refused (its code and message are printed). See ../README.md.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
)

type apiError struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	RetryAfterMs int64  `json:"retry_after_ms"`
}

type reply struct {
	OK    bool            `json:"ok"`
	JobID string          `json:"job_id"`
	Done  bool            `json:"done"`
	Job   json.RawMessage `json:"job"`
	Error *apiError       `json:"error"`
}

type job struct {
	JobID  string          `json:"job_id"`
	State  string          `json:"state"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// Codes that may pass when the same request (same key) is sent again.
func retryable(code string) bool { return code == "unavailable" || code == "rate_limited" }

func request(nc *nats.Conn, subject string, body any, timeout time.Duration) (*reply, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	msg, err := nc.Request(subject, data, timeout)
	if err != nil {
		return nil, err // nats.ErrNoResponders or nats.ErrTimeout: try again
	}
	var r reply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return nil, fmt.Errorf("reply is not JSON: %w", err)
	}
	return &r, nil
}

type refused struct{ apiError }

func (r refused) Error() string { return r.Code + ": " + r.Message }

func submit(nc *nats.Conn, pipeline, key string, payload json.RawMessage) (string, error) {
	body := map[string]any{"pipeline": pipeline, "key": key, "payload": payload}
	backoff := 100 * time.Millisecond
	var last error
	for attempt := 0; attempt < 8; attempt++ {
		r, err := request(nc, "troupe.api.v1.submit", body, 5*time.Second)
		wait := backoff
		switch {
		case err != nil:
			last = err
		case r.OK:
			return r.JobID, nil
		case r.Error != nil && !retryable(r.Error.Code):
			return "", refused{*r.Error}
		default:
			last = refused{*r.Error}
			if r.Error.RetryAfterMs > 0 {
				wait = time.Duration(r.Error.RetryAfterMs) * time.Millisecond
			}
		}
		time.Sleep(wait)
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
	return "", last
}

func waitForEnd(nc *nats.Conn, id string) (*job, error) {
	body := map[string]any{"job_id": id, "timeout_ms": 10000}
	for i := 0; i < 60; i++ {
		r, err := request(nc, "troupe.api.v1.wait", body, 15*time.Second)
		if err != nil {
			time.Sleep(time.Second) // no node answers: ask again
			continue
		}
		if r.Done {
			var j job
			return &j, json.Unmarshal(r.Job, &j)
		}
	}
	return nil, errors.New("no end within 10 minutes")
}

func run() int {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: publish PIPELINE KEY PAYLOAD_JSON")
		return 64
	}
	if !json.Valid([]byte(os.Args[3])) {
		fmt.Fprintln(os.Stderr, "PAYLOAD_JSON is not JSON")
		return 64
	}
	url := os.Getenv("TROUPE_NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url, nats.Name("publish-go"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot connect to NATS:", err)
		return 1
	}
	defer nc.Close()
	id, err := submit(nc, os.Args[1], os.Args[2], json.RawMessage(os.Args[3]))
	var r refused
	if errors.As(err, &r) {
		fmt.Printf("refused %s: %s\n", r.Code, r.Message)
		return 2
	} else if err != nil {
		fmt.Println("refused unavailable:", err)
		return 2
	}
	j, err := waitForEnd(nc, id)
	if err != nil {
		fmt.Println(id, "unknown:", err)
		return 1
	}
	if j.State == "succeeded" {
		fmt.Println(j.JobID, j.State, string(j.Result))
		return 0
	}
	fmt.Println(j.JobID, j.State, string(j.Error))
	return 1
}

func main() { os.Exit(run()) }
