"""keycourier: delivers Seam Access Grant credentials to hotel guests."""
