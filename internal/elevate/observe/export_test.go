package observe

// CountActivePaged is CountActive with the page size and the number of
// pages a test chooses.
var CountActivePaged = countActive
