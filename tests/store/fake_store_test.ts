import { storeContract } from "../_helpers/store_contract.ts";
import { checkLeaks, fakeStore } from "../_helpers/leaks.ts";

checkLeaks();

storeContract({
  name: "FakeStore",
  open: () => {
    let now = Date.now();
    const store = fakeStore({ now: () => now });
    return Promise.resolve({
      store,
      cleanup: () => Promise.resolve(),
      clock: () => Promise.resolve(now),
      elapse: (ms: number) => Promise.resolve(void (now += ms)),
    });
  },
});
