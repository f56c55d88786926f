package risk

// LeakedPassword reports a user-risk detection when the password the
// attempt just proved is on the breached list: whoever holds that list
// can sign in as the user, so the account is at high risk until the
// password changes. Only a successful attempt counts; otherwise anyone
// could raise a victim's risk by typing a breached password at their
// account. The password is only handed to the list's Contains; it is
// never kept or logged.
func (e *Engine) LeakedPassword(in SignIn, password string) (Detection, bool) {
	if !in.Success || password == "" || e.cfg.Breached == nil || !e.cfg.Breached.Contains(password) {
		return Detection{}, false
	}
	return Detection{
		Type:     TypeLeaked,
		Level:    High,
		Reason:   ReasonLeakedPassword,
		Evidence: map[string]string{"list": "breached-passwords"},
	}, true
}
