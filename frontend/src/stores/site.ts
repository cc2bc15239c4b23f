// The public site settings (name, announcement, registration open, default model, currency).
import { defineStore } from 'pinia'
import { ref } from 'vue'
import { settingsApi, type PublicSettings } from '@/api/settings'

export const useSiteStore = defineStore('site', () => {
  const settings = ref<PublicSettings>({
    site_name: 'AI Chat Gateway',
    announcement: '',
    registration_enabled: true,
    default_model: '',
    public_url: '',
    email_verification: false,
    require_verified_email: false,
    mail_enabled: false,
    currency: 'USD',
    user_agents_enabled: false,
  })

  async function load(): Promise<void> {
    try {
      settings.value = await settingsApi.public()
      document.title = settings.value.site_name
    } catch {
      /* the defaults above stand until the server answers */
    }
  }

  return { settings, load }
})
