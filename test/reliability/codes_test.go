package reliability

import "google.golang.org/grpc/codes"

// codeByName maps the code names the corpus uses to gRPC codes.
var codeByName = func() map[string]codes.Code {
	out := map[string]codes.Code{}
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		out[c.String()] = c
	}
	return out
}()
