package harness

import (
	"fmt"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

const (
	motoTimeout = 2 * time.Minute
	// MotoRegion is the region AWSConfig uses; moto accepts any.
	MotoRegion = "us-east-1"
	// MotoAccessKeyID and MotoSecretAccessKey are the static test credentials AWSConfig
	// signs with; moto does not check them.
	MotoAccessKeyID     = "testing"
	MotoSecretAccessKey = "testing"
)

// Moto is a running moto server: Secrets Manager, SSM Parameter Store, STS and the rest
// of moto's AWS services on one loopback endpoint.
type Moto struct {
	// Endpoint is the server's URL, http://127.0.0.1:<port>.
	Endpoint string

	inst *instance
}

func (m *Moto) instanceOf() *instance { return m.inst }

// AWSConfig returns an aws-sdk-go-v2 configuration that sends every service's requests to
// the moto server, in MotoRegion, signed with static test credentials. It reads nothing
// from the environment or ~/.aws.
func (m *Moto) AWSConfig() aws.Config {
	return aws.Config{
		Region:       MotoRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(MotoAccessKeyID, MotoSecretAccessKey, ""),
		BaseEndpoint: aws.String(m.Endpoint),
		// A test that fails fast on an error beats one that retries against a local server.
		RetryMaxAttempts: 1,
	}
}

// StartMoto starts a moto server for this test and stops it when the test ends. Prefer
// SharedMoto with unique secret names.
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	m, err := startMoto()
	if err != nil {
		failStart(t, "Moto", err)
	}
	t.Cleanup(func() {
		if err := m.inst.stop(); err != nil {
			t.Errorf("failed to stop moto: %v", err)
		}
	})
	m.inst.logOnFailure(t)
	return m
}

func startMoto() (*Moto, error) {
	return retryPortClash(startMotoOnce)
}

func startMotoOnce() (*Moto, error) {
	path, err := executable(MotoServerPath(), "moto_server")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	inst, err := newInstance("moto")
	if err != nil {
		return nil, err
	}
	_, err = inst.start(processSpec{
		name:    "moto",
		path:    path,
		args:    []string{"-H", "127.0.0.1", "-p", strconv.Itoa(port)},
		log:     inst.path("moto.log"),
		stopSig: syscall.SIGINT, // the Werkzeug server exits cleanly on it
	})
	if err != nil {
		return nil, inst.failStartup(err)
	}
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: 5 * time.Second}
	err = waitReady("moto", motoTimeout, inst.procs, func() error {
		resp, err := client.Get(endpoint + "/moto-api/data.json")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("moto answered %s", resp.Status)
		}
		return nil
	})
	client.CloseIdleConnections()
	if err != nil {
		return nil, inst.failStartup(err)
	}
	return &Moto{Endpoint: endpoint, inst: inst}, nil
}
