"""Units shared by every step (the one home of each conversion constant)."""

#: Days in a Julian year: velocities are in m/yr, pair separations in days (ITS_LIVE uses the same).
DAYS_PER_YEAR = 365.25
