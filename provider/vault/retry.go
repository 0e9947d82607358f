package vault

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"

	vaultapi "github.com/hashicorp/vault/api"
)

// checkRetry is vault/api's retry policy (connection failures, 5xx, 412) that also
// retries an answer cut short. go-retryablehttp hands back a 2xx answer with its body
// unread, and ParseSecret reads it after the retry loop has ended, so a body that stops
// before its Content-Length would fail the request at once. For a request that may be
// sent again, the policy reads the body inside the loop instead: a cut-short body then
// takes one of the request's MaxRetries retries, as a reset connection does. The bound
// stays MaxRetries+1 attempts per request, with go-retryablehttp's backoff, and the
// request's context (the publish's deadline) ends the loop as before.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if retry, checkErr := vaultapi.DefaultRetryPolicy(ctx, resp, err); retry || checkErr != nil {
		return retry, checkErr
	}
	if err != nil || resp == nil || resp.StatusCode < 200 || resp.StatusCode > 299 || !replayable(resp.Request) {
		return false, nil
	}
	readErr := bufferBody(resp)
	return readErr != nil && cutShort(readErr) && ctx.Err() == nil, nil
}

// replayable reports whether sending req again is harmless: a GET (KV reads, mount
// lookups), or a login, which at worst issues one more token that expires unused.
// Writes that issue something (database credentials, certificates) are not sent again
// for a lost answer: each would issue another lease.
func replayable(req *http.Request) bool {
	if req == nil {
		return false
	}
	if req.Method == http.MethodGet {
		return true
	}
	p := req.URL.Path
	return (req.Method == http.MethodPost || req.Method == http.MethodPut) &&
		strings.HasPrefix(p, "/v1/auth/") && strings.HasSuffix(p, "/login")
}

// bufferBody reads the whole body of resp and puts it back readable from memory. When
// reading fails, the body put back gives what was read and then the same error, so the
// answer the retry loop returns after its last attempt fails in ParseSecret as it would
// have without the policy.
func bufferBody(resp *http.Response) error {
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), failingReader{err}))
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return nil
}

// cutShort: the body ended before its length (the connection closed mid-answer) or the
// connection was reset while it was read.
func cutShort(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }
