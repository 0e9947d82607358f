//go:build integration

package smoke

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secretmount/secretmount/test/harness"
)

func TestMotoSecretsManager(t *testing.T) {
	moto := harness.SharedMoto(t)
	sm := secretsmanager.NewFromConfig(moto.AWSConfig())
	ctx := context.Background()

	created, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("smoke/" + t.Name()),
		SecretString: aws.String(`{"username":"app","password":"s3cr3t"}`),
	})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	tests := []struct {
		name     string
		secretID string
		want     string
		wantErr  bool
	}{
		{name: "by name", secretID: "smoke/" + t.Name(), want: `{"username":"app","password":"s3cr3t"}`},
		{name: "by ARN", secretID: aws.ToString(created.ARN), want: `{"username":"app","password":"s3cr3t"}`},
		{name: "missing", secretID: "smoke/absent", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(tt.secretID)})
			if tt.wantErr {
				var notFound *smtypes.ResourceNotFoundException
				if !errors.As(err, &notFound) {
					t.Fatalf("GetSecretValue(%s): err = %v, want ResourceNotFoundException", tt.secretID, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetSecretValue(%s): %v", tt.secretID, err)
			}
			if got := aws.ToString(out.SecretString); got != tt.want {
				t.Errorf("SecretString = %q, want %q", got, tt.want)
			}
		})
	}
}
