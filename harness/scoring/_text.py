def levenshtein_similarity(a: str, b: str) -> float:
    """1 - distance / max(len): 1.0 for identical strings, 1.0 for two empty strings."""
    import Levenshtein

    longest = max(len(a), len(b))
    return 1.0 if longest == 0 else 1.0 - Levenshtein.distance(a, b) / longest
