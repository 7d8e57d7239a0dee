"""Not imported: test_clock reads this file to prove its check finds each way of asking the machine."""
import time
from datetime import date, datetime

now = datetime.now()
today = date.today()
stamp = time.time()
