/**
 * The panel's z-index: below Vite's error overlay (`vite-error-overlay` sits at 99999), so when
 * both show, the overlay's single error is on top, and closing it uncovers the panel.
 */
export const PANEL_Z_INDEX = 99990

/** The z-index of Vite's error overlay (its `:host` rule), for the test that checks the order. */
export const VITE_OVERLAY_Z_INDEX = 99999
