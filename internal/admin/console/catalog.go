package console

import "net/http"

// catalog lists the authentication contexts, strengths and named
// locations policies can refer to.
func (c *Console) catalog(w http.ResponseWriter, r *http.Request, who *caller) error {
	cat, err := c.Service.Catalog(r.Context())
	if err != nil {
		return err
	}
	c.render(w, r, who, http.StatusOK, "catalog", view{Title: "Contexts, strengths and locations", Section: "catalog", Data: cat})
	return nil
}
