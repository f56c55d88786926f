package web

import "io/fs"

// Templates returns the embedded page templates (templates/*.html), for
// features that render their own pages in the shared layout, such as the
// push device page. Static files, push.js among them, are served under
// /static/ by Mount.
func Templates() fs.FS { return templateFS }
