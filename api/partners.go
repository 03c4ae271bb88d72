package api

import (
	"context"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"feedline/schemas"
)

type createPartnerRequest struct {
	ID string `json:"id"`
}

type createPartnerResponse struct {
	ID     string `json:"id"`
	APIKey string `json:"api_key"`
}

// createPartner registers a partner and answers its API key, the only time
// the key is shown: only its hash is stored.
func (s *server) createPartner(c *fiber.Ctx) error {
	var req createPartnerRequest
	if err := readJSON(c, &req); err != nil {
		return err
	}
	if !partnerIDPattern.MatchString(req.ID) {
		return unprocessable("invalid-partner-id", "Invalid partner id",
			"Partner id %q must be 1 to 63 lower-case letters, digits, '_' or '-', starting with a letter or digit.", req.ID)
	}
	key, hash := NewKey(req.ID)
	ctx, cancel := storeCtx(c)
	defer cancel()
	err := s.cfg.Partners.CreatePartner(ctx, schemas.Partner{ID: req.ID, KeyHash: hash, CreatedAt: s.cfg.Now().UTC()})
	if errors.Is(err, schemas.ErrExists) {
		return kindProblem(schemas.ErrExists, "partner-exists", "Partner exists",
			"Partner %q already exists; pick another id.", req.ID)
	}
	if err != nil {
		return failed("create the partner", err)
	}
	return c.Status(fiber.StatusCreated).JSON(createPartnerResponse{ID: req.ID, APIKey: key})
}

// putMapping validates a mapping and stores it as the partner's next version.
func (s *server) putMapping(c *fiber.Ctx) error {
	partner := c.Params("partner")
	if err := s.partnerExists(c, partner); err != nil {
		return err
	}
	var m schemas.Mapping
	if err := readJSON(c, &m); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return invalidMapping(err, "PUT it again")
	}
	m.Version = 0
	m.UpdatedAt = s.cfg.Now().UTC()
	ctx, cancel := storeCtx(c)
	defer cancel()
	stored, err := s.cfg.Mappings.PutMapping(ctx, partner, m)
	if err != nil {
		return failed("store the mapping", err)
	}
	return c.JSON(stored)
}

// getMapping answers the partner's current mapping.
func (s *server) getMapping(c *fiber.Ctx) error {
	partner := c.Params("partner")
	if err := s.partnerExists(c, partner); err != nil {
		return err
	}
	ctx, cancel := storeCtx(c)
	defer cancel()
	m, err := s.cfg.Mappings.Mapping(ctx, partner, 0)
	if errors.Is(err, schemas.ErrNotFound) {
		return notFound("Partner %q has no mapping yet; PUT /v1/partners/%s/mapping to create one.", partner, partner)
	}
	if err != nil {
		return failed("read the mapping", err)
	}
	return c.JSON(m)
}

// settingsView is a partner's settings with the values in effect.
type settingsView struct {
	MaxDeletePercent *int `json:"max_delete_percent"`
	// EffectiveMaxDeletePercent is what holds the partner's uploads now:
	// its own value, or the service's default.
	EffectiveMaxDeletePercent int `json:"effective_max_delete_percent"`
}

func (s *server) viewSettings(st schemas.PartnerSettings) settingsView {
	v := settingsView{MaxDeletePercent: st.MaxDeletePercent, EffectiveMaxDeletePercent: s.cfg.MaxDeletePercent}
	if st.MaxDeletePercent != nil {
		v.EffectiveMaxDeletePercent = *st.MaxDeletePercent
	}
	return v
}

// getSettings answers the partner's settings.
func (s *server) getSettings(c *fiber.Ctx) error {
	partner := c.Params("partner")
	if err := s.partnerExists(c, partner); err != nil {
		return err
	}
	ctx, cancel := storeCtx(c)
	defer cancel()
	st, err := s.cfg.Partners.Settings(ctx, partner)
	if err != nil {
		return failed("read the partner's settings", err)
	}
	return c.JSON(s.viewSettings(st))
}

// putSettings replaces the partner's settings.
func (s *server) putSettings(c *fiber.Ctx) error {
	partner := c.Params("partner")
	if err := s.partnerExists(c, partner); err != nil {
		return err
	}
	var st schemas.PartnerSettings
	if err := readJSON(c, &st); err != nil {
		return err
	}
	if err := st.Validate(); err != nil {
		return unprocessable("invalid-settings", "Invalid settings", "The settings are not valid: %s.", clause(err))
	}
	ctx, cancel := storeCtx(c)
	defer cancel()
	if err := s.cfg.Partners.PutSettings(ctx, partner, st); err != nil {
		return failed("store the partner's settings", err)
	}
	return c.JSON(s.viewSettings(st))
}

// maxDeletePercent is the share of live products an upload of partner may
// delete before it is held.
func (s *server) maxDeletePercent(ctx context.Context, partner string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	st, err := s.cfg.Partners.Settings(ctx, partner)
	if err != nil {
		return 0, failed("read the partner's settings", err)
	}
	return s.viewSettings(st).EffectiveMaxDeletePercent, nil
}

// partnerExists answers 404 for a partner the admin names but nobody created.
func (s *server) partnerExists(c *fiber.Ctx, partner string) error {
	if !principalOf(c).admin {
		return nil // a partner key proved its partner exists
	}
	ctx, cancel := storeCtx(c)
	defer cancel()
	_, err := s.cfg.Partners.Partner(ctx, partner)
	if errors.Is(err, schemas.ErrNotFound) {
		return notFound("Partner %q does not exist; create it with POST /v1/partners.", partner)
	}
	if err != nil {
		return failed("read the partner", err)
	}
	return nil
}

// invalidMapping lists every problem of a mapping; then says what to do
// once it is fixed.
func invalidMapping(err error, then string) *problemError {
	var me *schemas.MappingError
	if !errors.As(err, &me) {
		return unprocessable("invalid-mapping", "Invalid mapping", "The mapping is not valid: %v. Fix it and %s.", err, then)
	}
	p := unprocessable("invalid-mapping", "Invalid mapping",
		"The mapping is not valid: %s. Fix it and %s.", strings.Join(me.Problems, "; "), then)
	p.errors = me.Problems
	return p
}
