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

// verifyToken answers the user a token was signed for.
func verifyToken(key []byte, token string, now time.Time) (string, error) {
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return "", err
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
		return unauthorized(`Send a shopper token as "Authorization: Bearer <token>".`)
	}
	user, err := verifyToken(s.cfg.TokenKey, strings.TrimSpace(token), s.cfg.Now())
	if err != nil {
		return unauthorized("The shopper token is not valid (%s); sign in again for a new one.", clause(err))
	}
	c.Locals(shopperKey, user)
	return c.Next()
}

func shopperOf(c *fiber.Ctx) string {
	u, _ := c.Locals(shopperKey).(string)
	return u
}
