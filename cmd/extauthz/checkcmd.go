package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
)

// checkCmd answers one CheckRequest, written as protojson the way Envoy
// sends it: from a running server (--addr), or offline from policy files
// (--policy), explaining every step of the decision.
func checkCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", stderr)
	addr := fs.String("addr", "", "address of a running extauthz: host:port or unix:///path")
	var policies stringList
	fs.Var(&policies, "policy", "evaluate offline against these policy files or directories (repeatable), explaining each step")
	reqFile := fs.String("request", "", "file holding a CheckRequest as protojson (- for stdin)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if err := parseFlags(fs, args); err != nil {
		return flagExit(err)
	}
	if *reqFile == "" || (*addr == "") == (len(policies) == 0) {
		fmt.Fprintln(stderr, "usage: extauthz check (--addr ADDR | --policy PATH...) --request FILE")
		return 2
	}
	req, err := readCheckRequest(*reqFile)
	if err != nil {
		fmt.Fprintln(stderr, "extauthz check:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if len(policies) > 0 {
		return explain(ctx, policies, req, stdout, stderr)
	}
	resp, err := remoteCheck(ctx, *addr, req)
	if err != nil {
		fmt.Fprintln(stderr, "extauthz check:", err)
		return 1
	}
	fmt.Fprintln(stdout, protojson.MarshalOptions{Multiline: true, Indent: "  "}.Format(resp))
	return 0
}

func readCheckRequest(name string) (*authv3.CheckRequest, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, err
	}
	req := &authv3.CheckRequest{}
	if err := protojson.Unmarshal(data, req); err != nil {
		return nil, fmt.Errorf("request %s: %w", name, err)
	}
	return req, nil
}

func remoteCheck(ctx context.Context, addr string, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	target := addr
	if !strings.HasPrefix(target, "unix://") {
		target = "passthrough:///" + target
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return authv3.NewAuthorizationClient(conn).Check(ctx, req)
}

// explain evaluates req against the policy in-process, fetching keys from
// the policy's own sources, and prints the steps and the response.
func explain(ctx context.Context, policies []string, req *authv3.CheckRequest, stdout, stderr io.Writer) int {
	srv, closeAll, err := offlineServer(ctx, policies)
	if err != nil {
		fmt.Fprintln(stderr, "extauthz check:", err)
		return 1
	}
	defer closeAll()
	resp, steps := srv.Explain(ctx, req)
	md := resp.GetDynamicMetadata().GetFields()
	out := struct {
		Decision string          `json:"decision"`
		Rule     string          `json:"rule"`
		Reason   string          `json:"reason"`
		Steps    []check.Step    `json:"steps"`
		Response json.RawMessage `json:"response"`
	}{
		Decision: md["decision"].GetStringValue(),
		Rule:     md["rule"].GetStringValue(),
		Reason:   md["reason"].GetStringValue(),
		Steps:    steps,
		Response: json.RawMessage(protojson.Format(resp)),
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(stderr, "extauthz check:", err)
		return 1
	}
	return 0
}

// offlineServer builds an in-process Check server for the policy, with its
// own key plane and memory replay store, as `check --policy` and `test` use.
func offlineServer(ctx context.Context, policies []string) (*check.Server, func(), error) {
	plane, err := keys.NewPlane(keys.Config{})
	if err != nil {
		return nil, nil, err
	}
	snap, err := policy.Load(policies, policy.Options{Keys: plane})
	if err != nil {
		plane.Close()
		return nil, nil, err
	}
	plane.Prefetch(ctx, snap.RemoteSources())
	srv := check.New(check.Config{
		Policy: policy.NewStore(snap),
		Replay: replay.NewMemory(replay.MemoryConfig{}),
	})
	return srv, func() { plane.Close() }, nil
}
