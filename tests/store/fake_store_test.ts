import { storeContract } from "../_helpers/store_contract.ts";
import { FakeStore } from "../_helpers/fake_store.ts";

storeContract({
  name: "FakeStore",
  open: () => {
    let now = Date.now();
    const store = new FakeStore({ now: () => now });
    return Promise.resolve({
      store,
      cleanup: () => Promise.resolve(),
      clock: () => Promise.resolve(now),
      elapse: (ms: number) => Promise.resolve(void (now += ms)),
    });
  },
});
