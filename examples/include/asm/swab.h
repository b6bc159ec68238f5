/* No architecture-specific byte swaps: linux/swab.h falls back to its generic ones. */
