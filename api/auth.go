package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"

	"feedline/schemas"
)

// partnerIDPattern keeps partner ids safe inside NATS subjects and bucket keys.
var partnerIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// keySecret encodes the random part of a key; its alphabet has no '_', so
// the partner id is everything between "fl_" and the last '_'.
var keySecret = base32.HexEncoding.WithPadding(base32.NoPadding)

// NewKey makes a partner API key, "fl_<partner>_<52 base32 chars>" carrying
// 32 random bytes, and the hash to store. Keys are high-entropy, so a fast
// hash is enough: guessing the key is as hard as inverting it.
func NewKey(partner string) (key string, hash string) {
	var secret [32]byte
	_, _ = rand.Read(secret[:]) // never fails; crashes the process if the OS has no randomness
	key = "fl_" + partner + "_" + strings.ToLower(keySecret.EncodeToString(secret[:]))
	return key, hashKey(key)
}

func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// partnerOfKey reads the partner id a key was issued for.
func partnerOfKey(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, "fl_")
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '_')
	if i <= 0 {
		return "", false
	}
	return rest[:i], partnerIDPattern.MatchString(rest[:i])
}

// presentedKey reads "Authorization: Bearer <key>" or "X-API-Key: <key>".
func presentedKey(c *fiber.Ctx) string {
	if k := strings.TrimSpace(c.Get("X-API-Key")); k != "" {
		return k
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(c.Get(fiber.HeaderAuthorization)), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	return ""
}

// principal is who a request authenticated as.
type principal struct {
	admin   bool
	partner string // set when not admin
}

func (p principal) mayActFor(partner string) bool { return p.admin || p.partner == partner }

// authenticate resolves the presented key to the admin or one partner.
func (s *server) authenticate(c *fiber.Ctx) (principal, error) {
	key := presentedKey(c)
	if key == "" {
		return principal{}, unauthorized(`Send an API key as "Authorization: Bearer <key>" or "X-API-Key: <key>".`)
	}
	if s.cfg.AdminKey != "" && subtle.ConstantTimeCompare([]byte(key), []byte(s.cfg.AdminKey)) == 1 {
		return principal{admin: true}, nil
	}
	unknown := unauthorized("The API key is not valid; use the key you got when the partner was created.")
	id, ok := partnerOfKey(key)
	if !ok {
		return principal{}, unknown
	}
	ctx, cancel := storeCtx(c)
	defer cancel()
	p, err := s.cfg.Partners.Partner(ctx, id)
	if errors.Is(err, schemas.ErrNotFound) {
		return principal{}, unknown
	}
	if err != nil {
		return principal{}, failed("check the API key", err)
	}
	if subtle.ConstantTimeCompare([]byte(hashKey(key)), []byte(p.KeyHash)) != 1 {
		return principal{}, unknown
	}
	return principal{partner: p.ID}, nil
}

// requireAdmin lets only the admin key through.
func (s *server) requireAdmin(c *fiber.Ctx) error {
	if s.cfg.AdminKey == "" {
		return unauthorized("Admin routes are disabled because the server has no admin key; start it with FEEDLINE_ADMIN_KEY set.")
	}
	who, err := s.authenticate(c)
	if err != nil {
		return err
	}
	if !who.admin {
		return forbidden("This route needs the admin key; a partner key cannot use it.")
	}
	return c.Next()
}

// requirePartner lets through the key of the partner named in the path, or the admin key.
func (s *server) requirePartner(c *fiber.Ctx) error {
	who, err := s.authenticate(c)
	if err != nil {
		return err
	}
	if partner := c.Params("partner"); !who.mayActFor(partner) {
		return forbidden("This key belongs to partner %q and cannot act for partner %q.", who.partner, partner)
	}
	c.Locals(principalKey, who)
	return c.Next()
}

// requireKey lets through any valid key; the handler checks ownership.
func (s *server) requireKey(c *fiber.Ctx) error {
	who, err := s.authenticate(c)
	if err != nil {
		return err
	}
	c.Locals(principalKey, who)
	return c.Next()
}

func principalOf(c *fiber.Ctx) principal {
	p, _ := c.Locals(principalKey).(principal)
	return p
}
