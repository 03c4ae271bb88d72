package api

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
)

// userIDPattern keeps user ids safe inside subjects, keys and cache names.
var userIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// tokenIssuer names feedline as the issuer of shopper tokens.
const tokenIssuer = "feedline"

// DefaultTokenMaxLifetime is the longest a shopper token may be valid
// unless the server is configured otherwise.
const DefaultTokenMaxLifetime = 30 * 24 * time.Hour

// SignToken makes a shopper's bearer token: an HS256 JWT whose subject is
// the user id, signed with FEEDLINE_TOKEN_KEY.
func SignToken(key []byte, user string, ttl time.Duration, now time.Time) (string, error) {
	if len(key) < 16 {
		return "", errors.New("the token key must be at least 16 bytes")
	}
	if !userIDPattern.MatchString(user) {
		return "", fmt.Errorf("user id %q: use 1 to 63 lower-case letters, digits, '-' or '_'", user)
	}
	claims := jwt.RegisteredClaims{
		Issuer:    tokenIssuer,
		Subject:   user,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
}

// verifyToken answers the user a token was signed for. A token valid for
// longer than maxLifetime, from now or from its issue, is refused: a
// leaked key or token must not grant access for years.
func verifyToken(key []byte, token string, now time.Time, maxLifetime time.Duration) (string, error) {
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return "", err
	}
	exp := claims.ExpiresAt.Time
	if exp.After(now.Add(maxLifetime)) {
		return "", fmt.Errorf("it expires at %s, more than %s from now, the longest a shopper token may be valid", exp.UTC().Format(time.RFC3339), maxLifetime)
	}
	if claims.IssuedAt != nil && exp.Sub(claims.IssuedAt.Time) > maxLifetime {
		return "", fmt.Errorf("it is valid for %s from its issue, longer than the %s a shopper token may be", exp.Sub(claims.IssuedAt.Time), maxLifetime)
	}
	if !userIDPattern.MatchString(claims.Subject) {
		return "", errors.New("token subject is not a user id")
	}
	return claims.Subject, nil
}

// requireShopper lets through a valid shopper token and remembers its user.
func (s *server) requireShopper(c *fiber.Ctx) error {
	if s.cfg.Feed == nil {
		return problem(fiber.StatusServiceUnavailable, "feed-unavailable", "Feed unavailable",
			"This server does not serve the news feed; send feed requests to a server running it.")
	}
	if len(s.cfg.TokenKey) == 0 {
		return notServed("This server cannot check shopper tokens: it was started without FEEDLINE_TOKEN_KEY.")
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(c.Get(fiber.HeaderAuthorization)), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return tokenRefused(`Send a shopper token as "Authorization: Bearer <token>".`)
	}
	user, err := verifyToken(s.cfg.TokenKey, strings.TrimSpace(token), s.cfg.Now(), s.cfg.TokenMaxLifetime)
	if err != nil {
		return tokenRefused("The shopper token is not valid (%s); sign in again for a new one.", clause(err))
	}
	c.Locals(shopperKey, user)
	return c.Next()
}

func tokenRefused(format string, args ...any) *problemError {
	return problem(fiber.StatusUnauthorized, "invalid-token", "Missing or invalid shopper token", format, args...)
}

func shopperOf(c *fiber.Ctx) string {
	u, _ := c.Locals(shopperKey).(string)
	return u
}
