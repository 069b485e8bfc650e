"""Privacy-preserving linkage: hardened Bloom-filter encodings, keyed tokens, Dice, linker."""
