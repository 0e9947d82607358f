// Package smoke proves, with the integration build tag, that each component the harness
// starts does real work: the API server issues and reviews ServiceAccount tokens, Vault
// stores secrets and logs in with those tokens, moto serves Secrets Manager and PostgreSQL
// accepts logins. It holds tests only and must not be imported.
package smoke
