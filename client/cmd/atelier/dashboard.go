package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/atelier-vision/atelier/client/dashboard"
)

// cameraFlags collects repeated --camera NAME=SOURCE flags.
type cameraFlags []dashboard.Camera

func (f *cameraFlags) String() string { return fmt.Sprint(len(*f), " cameras") }

func (f *cameraFlags) Set(v string) error {
	c, err := dashboard.ParseCamera(v)
	if err == nil {
		*f = append(*f, c)
	}
	return err
}

// ruleFlags collects repeated --rule [CAMERA:]NAME=CATEGORY[,...] flags.
type ruleFlags []dashboard.Rule

func (f *ruleFlags) String() string { return fmt.Sprint(len(*f), " rules") }

func (f *ruleFlags) Set(v string) error {
	r, err := dashboard.ParseRule(v)
	if err == nil {
		*f = append(*f, r)
	}
	return err
}

func dashboardCmd(fs *flag.FlagSet) func(context.Context, *app, []string) error {
	def := dashboard.DefaultConfig()
	listen := fs.String("listen", ":8080", "address the web page is served on")
	listenCert := fs.String("listen-tls-cert", "", "serve the page over HTTPS with this PEM certificate chain (TLS 1.2 or later; with --listen-tls-key); re-read when it changes. Not --tls-cert, which is for the connection to atelierd")
	listenKey := fs.String("listen-tls-key", "", "the PEM private key of --listen-tls-cert")
	usersFile := fs.String("users-file", "", "an htpasswd file of bcrypt hashes (htpasswd -B): every path of the page needs one of its logins; re-read when it changes")
	loginAttempts := fs.Int("login-attempts-per-minute", def.LoginAttemptsPerMinute, "with --users-file: logins that need a bcrypt check from one client address (IPv4 address or IPv6 /64), at most, with a burst of as many; successful ones are given back; over it: 429 with Retry-After. 0 turns the limit off. Behind a reverse proxy every client has the proxy's address")
	maxPages := fs.Int("max-pages", def.MaxPages, "pages open at once, at most (1 to 1024); one more is refused until one closes")
	var cameras cameraFlags
	fs.Var(&cameras, "camera", "a camera: NAME=SOURCE, a video file, a folder of images or an MJPEG file, played in a loop (repeatable)")
	var rules ruleFlags
	fs.Var(&rules, "rule", "an alert rule: [CAMERA:]NAME=CATEGORY[,CATEGORY...]; no CAMERA means every camera (repeatable; default: dress=Dress and suit-like=Coat)")
	ruleFile := fs.String("rules", "", "a JSON rule file, {\"rules\": [{\"camera\": ..., \"name\": ..., \"categories\": [...]}]} (see docs/DASHBOARD.md)")
	fps := fs.Float64("fps", def.FPS, "frames a second read from each camera and sent to atelierd")
	viewFPS := fs.Float64("view-fps", def.ViewFPS, "frames a second sent to each browser per camera, at most")
	minScore := fs.Float64("min-score", def.MinScore, "lowest detection score shown and tallied")
	alertScore := fs.Float64("alert-score", def.AlertScore, "default lowest score that counts as seeing a rule's category")
	alertFrames := fs.Uint("alert-frames", uint(def.AlertFrames), "default frames in a row that must show the category before an alert")
	cooldown := fs.Duration("cooldown", def.Cooldown, "default quiet time after an alert before the same rule fires again")
	window := fs.Duration("tally-window", def.TallyWindow, "window each camera's tallies cover")
	history := fs.Duration("history", def.History, "how much tally history the charts show")
	return func(ctx context.Context, a *app, args []string) error {
		if len(args) > 0 {
			return usagef("unexpected arguments %q (cameras are --camera NAME=SOURCE)", args)
		}
		logger := slog.New(slog.NewTextHandler(a.env.stderr, nil))
		cfg := def
		cfg.Addr, cfg.Cameras, cfg.Rules, cfg.Log = a.addr, cameras, rules, logger
		cfg.FPS, cfg.ViewFPS, cfg.MinScore, cfg.AlertScore = *fps, *viewFPS, *minScore, *alertScore
		cfg.AlertFrames, cfg.Cooldown, cfg.TallyWindow, cfg.History = uint32(*alertFrames), *cooldown, *window, *history
		cfg.TLSCert, cfg.TLSKey, cfg.UsersFile, cfg.MaxPages = *listenCert, *listenKey, *usersFile, *maxPages
		cfg.LoginAttemptsPerMinute = *loginAttempts
		if *ruleFile != "" {
			fromFile, err := dashboard.ReadRules(*ruleFile)
			if err == nil {
				err = dashboard.CheckRules(fromFile, cameras)
				if err != nil {
					err = fmt.Errorf("rule file %s: %w", *ruleFile, err)
				}
			}
			if err != nil { // the page and the log say so; the cameras run without these rules
				cfg.RulesProblem = err.Error() + "; alerts from this file are off until it is fixed and the dashboard restarted"
			} else {
				cfg.Rules = append(cfg.Rules, fromFile...)
			}
		}
		if len(rules) == 0 && *ruleFile == "" {
			cfg.Rules = dashboard.DefaultRules
		}
		if err := cfg.Check(); err != nil {
			return usagef("%v", err)
		}
		c, err := a.connect(dashboard.ClientOptions()...)
		if err != nil {
			return err
		}
		d, err := dashboard.New(c, cfg)
		if err != nil {
			return usagef("%v", err)
		}
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			return codedError{"LISTEN", err.Error()}
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		srv := d.HTTPServer(ctx)
		url := pageURL(ln.Addr(), d.TLS())
		logger.Info("dashboard", "url", url, "atelierd", a.addr, "config", d.String(),
			"fps", cfg.FPS, "view_fps", cfg.ViewFPS, "tally_window", cfg.TallyWindow,
			"listen_tls_cert", cfg.TLSCert, "users_file", cfg.UsersFile,
			"login_attempts_per_minute", cfg.LoginAttemptsPerMinute, "max_pages", cfg.MaxPages)
		warnIfExposed(logger, ln.Addr(), cfg)
		fmt.Fprintf(a.env.stdout, "dashboard: %s\n", url)
		served := make(chan error, 1)
		go func() { served <- d.Serve(srv, ln) }()
		ran := make(chan struct{})
		go func() { d.Run(ctx); close(ran) }()
		select {
		case <-ctx.Done():
			err = nil
		case err = <-served:
		}
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		<-ran
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return codedError{"LISTEN", err.Error()}
		}
		return nil
	}
}

// pageURL is the address a browser on this machine opens.
func pageURL(addr net.Addr, tls bool) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if host == "" || host == "::" || host == "0.0.0.0" || strings.HasPrefix(host, "[") {
		host = "localhost"
	}
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, port) + "/"
}

// exposed reports whether addr is reachable from other machines: any address but a
// loopback one (":8080" listens on every interface).
func exposed(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return !ok || !tcp.IP.IsLoopback()
}

// warnIfExposed logs one WARN line when the page is reachable from the network
// without a login, or with a login whose passwords cross it in clear text.
func warnIfExposed(log *slog.Logger, addr net.Addr, cfg dashboard.Config) {
	switch {
	case !exposed(addr):
	case cfg.UsersFile == "":
		log.Warn("the page shows the store's camera images to anyone who can reach this port: "+
			"give --users-file (htpasswd -B) with --listen-tls-cert and --listen-tls-key, or --listen 127.0.0.1:PORT",
			"listen", addr.String())
	case cfg.TLSCert == "":
		log.Warn("the page's logins cross the network in clear text: give --listen-tls-cert and --listen-tls-key",
			"listen", addr.String())
	}
}
