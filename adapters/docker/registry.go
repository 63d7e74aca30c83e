package docker

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// BundleConfigPath is where a bundle's image carries its config.
const BundleConfigPath = "/bundle/config.yaml"

// MaxBundleConfigBytes bounds the config read out of an image.
const MaxBundleConfigBytes = 1 << 20

// RegistryConfig configures a Registry. Zero fields take the defaults
// named.
type RegistryConfig struct {
	Engine Engine // required: the daemon that pulls and keeps the images
	// CredentialsFile is the Docker config.json with the registry logins
	// (CredentialsFile(os.Getenv)); read at each use, so a new login needs
	// no restart.
	CredentialsFile string
	// PullTimeout bounds one pull (10m). A pull runs on its own, not under
	// its caller's context: a caller that stops waiting leaves it going,
	// and the next caller for the same image waits for the same pull.
	PullTimeout time.Duration
	// HTTP reads the registries' tags and catalogs (a client with a 30s
	// timeout).
	HTTP   *http.Client
	Logger zerolog.Logger
}

// Registry pulls bundle images through the Engine API, reads the config
// they carry without starting them, and reads registries' tags and
// catalogs over the registry HTTP API (distribution v2).
type Registry struct {
	cfg   RegistryConfig
	mu    sync.Mutex
	pulls map[string]*pull // in flight, by reference
}

type pull struct {
	done   chan struct{}
	pinned string
	err    error
}

// NewRegistry builds a Registry.
func NewRegistry(cfg RegistryConfig) (*Registry, error) {
	if cfg.Engine == nil {
		return nil, errors.New("registry config: Engine is required")
	}
	if cfg.PullTimeout <= 0 {
		cfg.PullTimeout = 10 * time.Minute
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	return &Registry{cfg: cfg, pulls: map[string]*pull{}}, nil
}

// ParseImage reads an image reference ("host:port/repo:tag", "repo",
// "repo@sha256:...") into its normalized name, with "latest" when it
// names no tag or digest.
func ParseImage(ref string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("%q is not an image reference: %v", clipRef(ref), err)
	}
	return reference.TagNameOnly(named), nil
}

func clipRef(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// Pull pulls ref, pins it to its content (repository@sha256:...) and
// reads the bundle config it carries. It waits for the pull until ctx
// ends; the pull itself goes on, bound by PullTimeout.
func (r *Registry) Pull(ctx context.Context, ref string) (string, []byte, error) {
	named, err := ParseImage(ref)
	if err != nil {
		return "", nil, err
	}
	pinned, err := r.pullOnce(ctx, named)
	if err != nil {
		return "", nil, err
	}
	config, err := r.ReadConfig(ctx, pinned)
	if err != nil {
		return "", nil, err
	}
	return pinned, config, nil
}

// Local says whether the host has ref, and its pinned reference when the
// image came from a registry ("" for one built here).
func (r *Registry) Local(ctx context.Context, ref string) (bool, string, error) {
	named, err := ParseImage(ref)
	if err != nil {
		return false, "", err
	}
	info, err := r.cfg.Engine.ImageInspect(ctx, reference.FamiliarString(named))
	if cerrdefs.IsNotFound(err) {
		return false, "", nil
	}
	if err != nil {
		return false, "", err
	}
	return true, repoDigest(named, info.RepoDigests), nil
}

// repoDigest picks the image's digest reference in named's repository.
func repoDigest(named reference.Named, digests []string) string {
	for _, d := range digests {
		if dn, err := reference.ParseNormalizedNamed(d); err == nil && dn.Name() == named.Name() {
			return reference.FamiliarString(dn)
		}
	}
	return ""
}

func (r *Registry) pullOnce(ctx context.Context, named reference.Named) (string, error) {
	key := named.String()
	r.mu.Lock()
	p := r.pulls[key]
	if p == nil {
		p = &pull{done: make(chan struct{})}
		r.pulls[key] = p
		go func() {
			// Detached from the caller: a slow pull outlives a builtin's
			// timeout, and the next caller finds it done or joins it.
			pullCtx, cancel := context.WithTimeout(context.Background(), r.cfg.PullTimeout)
			defer cancel()
			p.pinned, p.err = r.pull(pullCtx, named)
			r.mu.Lock()
			delete(r.pulls, key)
			r.mu.Unlock()
			close(p.done)
		}()
	}
	r.mu.Unlock()
	select {
	case <-p.done:
		return p.pinned, p.err
	case <-ctx.Done():
		return "", fmt.Errorf("still pulling %s: the pull goes on (for up to %s); run the command again when it is done", reference.FamiliarString(named), r.cfg.PullTimeout)
	}
}

func (r *Registry) pull(ctx context.Context, named reference.Named) (string, error) {
	ref := reference.FamiliarString(named)
	opts := image.PullOptions{}
	if login, ok := r.login(reference.Domain(named)); ok {
		auth, err := registry.EncodeAuthConfig(registry.AuthConfig{Username: login.Username, Password: login.Password, IdentityToken: login.IdentityToken, ServerAddress: reference.Domain(named)})
		if err != nil {
			return "", err
		}
		opts.RegistryAuth = auth
	}
	start := time.Now()
	rc, err := r.cfg.Engine.ImagePull(ctx, ref, opts)
	if err != nil {
		return "", fmt.Errorf("cannot pull %s: %v", ref, daemonMessage(err))
	}
	defer rc.Close()
	// The pull ends when its progress stream does; a failure is a message
	// in the stream.
	failure, err := progressFailure(rc)
	if err != nil {
		return "", fmt.Errorf("cannot pull %s: reading the daemon's progress: %v", ref, err)
	}
	if failure != "" {
		return "", fmt.Errorf("cannot pull %s: %s", ref, failure)
	}
	info, err := r.cfg.Engine.ImageInspect(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("pulled %s, but cannot inspect it: %v", ref, err)
	}
	pinned := repoDigest(named, info.RepoDigests)
	if pinned == "" {
		return "", fmt.Errorf("pulled %s, but the daemon names no digest for it in %s", ref, named.Name())
	}
	r.cfg.Logger.Info().Str("image", ref).Str("pinned", pinned).Dur("took", time.Since(start)).Msg("pulled a bundle image")
	return pinned, nil
}

// daemonMessage is the daemon's sentence without the client's wrapping.
func daemonMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "Error response from daemon: ")
}

func (r *Registry) login(host string) (Login, bool) {
	creds, err := LoadCredentials(r.cfg.CredentialsFile)
	if err != nil {
		r.cfg.Logger.Warn().Err(err).Msg("registry credentials not read; going on without them")
		return Login{}, false
	}
	return creds.For(host)
}

// ReadConfig reads the bundle config an image carries at
// BundleConfigPath, without starting it: a container is created, the file
// copied out, and the container removed.
func (r *Registry) ReadConfig(ctx context.Context, ref string) ([]byte, error) {
	eng := r.cfg.Engine
	created, err := eng.ContainerCreate(ctx,
		// Never started: the command only satisfies an image without one.
		&container.Config{Image: ref, Cmd: []string{BundleConfigPath}, NetworkDisabled: true, Labels: map[string]string{LabelManaged: "true"}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, "logbook-config-"+uuid.NewString()[:13])
	if err != nil {
		return nil, fmt.Errorf("cannot read the bundle config of %s: %v", ref, daemonMessage(err))
	}
	defer func() {
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := eng.ContainerRemove(rmCtx, created.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			r.cfg.Logger.Warn().Err(err).Str("container_id", created.ID).Msg("removing the container a bundle config was read from")
		}
	}()
	rc, _, err := eng.CopyFromContainer(ctx, created.ID, BundleConfigPath)
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("image %s has no %s: a bundle's image carries its config there", ref, BundleConfigPath)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read %s from %s: %v", BundleConfigPath, ref, daemonMessage(err))
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("image %s has no file at %s", ref, BundleConfigPath)
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s from %s: %v", BundleConfigPath, ref, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, MaxBundleConfigBytes+1))
		if err != nil {
			return nil, err
		}
		if len(data) > MaxBundleConfigBytes {
			return nil, fmt.Errorf("%s in %s is over %d bytes", BundleConfigPath, ref, MaxBundleConfigBytes)
		}
		return data, nil
	}
}

// RemoveImage removes an image (by any of its references) and every tag
// of it, unless a container uses it.
func (r *Registry) RemoveImage(ctx context.Context, ref string) error {
	info, err := r.cfg.Engine.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = r.cfg.Engine.ImageRemove(ctx, info.ID, image.RemoveOptions{Force: true, PruneChildren: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove image %s: %v", ref, daemonMessage(err))
	}
	return nil
}

// ImageID is the id of a local image, "" when the host does not have it.
func (r *Registry) ImageID(ctx context.Context, ref string) (string, error) {
	info, err := r.cfg.Engine.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	return info.ID, err
}

// Tags lists the tags of a repository ("host/path", as in an image
// reference).
func (r *Registry) Tags(ctx context.Context, repo string) ([]string, error) {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return nil, fmt.Errorf("%q is not a repository: %v", clipRef(repo), err)
	}
	host := reference.Domain(named)
	var out struct {
		Tags []string `json:"tags"`
	}
	if err := r.get(ctx, host, "/v2/"+reference.Path(named)+"/tags/list", "repository:"+reference.Path(named)+":pull", &out); err != nil {
		return nil, err
	}
	return out.Tags, nil
}

// Catalog lists a registry's repositories (its _catalog, which Docker
// Hub does not serve), at most limit.
func (r *Registry) Catalog(ctx context.Context, host string, limit int) ([]string, error) {
	var out struct {
		Repositories []string `json:"repositories"`
	}
	if err := r.get(ctx, host, fmt.Sprintf("/v2/_catalog?n=%d", limit), "registry:catalog:*", &out); err != nil {
		return nil, err
	}
	return out.Repositories, nil
}

// registryURL is the registry's base: plain HTTP for a loopback registry,
// as the Docker daemon allows, HTTPS for any other.
func registryURL(host string) string {
	if host == "docker.io" {
		return "https://registry-1.docker.io"
	}
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if ip := net.ParseIP(h); h == "localhost" || ip != nil && ip.IsLoopback() {
		return "http://" + host
	}
	return "https://" + host
}

// get reads a registry API path as JSON: with Basic credentials, and on a
// Bearer challenge with a token from the realm the registry names (the
// distribution token flow), for scope.
func (r *Registry) get(ctx context.Context, host, path, scope string, out any) error {
	login, hasLogin := r.login(host)
	endpoint := registryURL(host) + path
	do := func(authorization string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
		if err != nil {
			return nil, err
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		} else if hasLogin {
			req.SetBasicAuth(login.Username, login.Password)
		}
		return r.cfg.HTTP.Do(req)
	}
	resp, err := do("")
	if err != nil {
		return fmt.Errorf("cannot reach registry %s: %v", host, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		challenge := resp.Header.Get("WWW-Authenticate")
		resp.Body.Close()
		if !strings.HasPrefix(strings.ToLower(challenge), "bearer ") {
			return fmt.Errorf("registry %s refused the credentials for it in %s (401)", host, r.cfg.CredentialsFile)
		}
		token, err := r.token(ctx, challenge, scope, login, hasLogin)
		if err != nil {
			return fmt.Errorf("registry %s: %v", host, err)
		}
		if resp, err = do("Bearer " + token); err != nil {
			return fmt.Errorf("cannot reach registry %s: %v", host, err)
		}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("registry %s refused the credentials for it in %s (401)", host, r.cfg.CredentialsFile)
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("registry %s has no %s", host, strings.TrimPrefix(path, "/v2/"))
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("registry %s answered %s for %s", host, resp.Status, path)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out); err != nil {
		return fmt.Errorf("registry %s answered %s with something that is not its JSON", host, path)
	}
	return nil
}

var challengeParam = regexp.MustCompile(`(\w+)="([^"]*)"`)

// token asks a Bearer challenge's realm for a token.
func (r *Registry) token(ctx context.Context, challenge, scope string, login Login, hasLogin bool) (string, error) {
	params := map[string]string{}
	for _, m := range challengeParam.FindAllStringSubmatch(challenge, -1) {
		params[strings.ToLower(m[1])] = m[2]
	}
	realm, err := url.Parse(params["realm"])
	if err != nil || realm.Scheme != "https" && realm.Scheme != "http" {
		return "", errors.New("its token challenge names no usable realm")
	}
	q := realm.Query()
	if params["service"] != "" {
		q.Set("service", params["service"])
	}
	q.Set("scope", scope)
	realm.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return "", err
	}
	if hasLogin {
		req.SetBasicAuth(login.Username, login.Password)
	}
	resp, err := r.cfg.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot reach its token service: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("its token service refused (%s)", resp.Status)
	}
	var t struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&t); err != nil || t.Token+t.AccessToken == "" {
		return "", errors.New("its token service answered no token")
	}
	if t.Token != "" {
		return t.Token, nil
	}
	return t.AccessToken, nil
}

// DefaultCredentialsFile is CredentialsFile of this process's environment.
func DefaultCredentialsFile() string { return CredentialsFile(os.Getenv) }
